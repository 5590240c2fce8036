import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { tarMemberName } from '@dicomflow/dicom';
import {
  readReceiptIndexLines,
  ReceiptIndexFormatError,
  type Job,
  type ReceiptJobInput,
} from '@dicomflow/messages';
import type { Storage } from '@dicomflow/storage';
import { JobFailure } from '../jobs/job-failure.js';
import { coalesce } from './coalesce.js';
import { asTransientDockerError, dockerMessage, dockerStatus } from '../docker/docker-errors.js';
import { containerDir } from '../docker/create-options.js';

/** What staging the input needs. */
export interface InputDeps {
  readonly storage: Pick<Storage, 'getStream'>;
}

/** What was put into the container. */
export interface StagedInput {
  readonly files: number;
  readonly bytes: number;
}

export { containerDir };

/**
 * Adds the input and output folders of a job to a tar put at the container's root: the output folder is
 * writable by any user, since a model need not run as root.
 */
function addJobFolders(pack: tar.Pack, job: Job): void {
  for (const [dir, mode] of [
    [job.model.input_dir, 0o755],
    [job.model.output_dir, 0o777],
  ] as const) {
    const name = containerDir(dir).slice(1);
    if (name !== '') pack.entry({ name: `${name}/`, type: 'directory', mode, mtime: new Date(0) });
  }
}

/** Creates the input and output folders in a created (not started) container. */
async function createJobFolders(container: Docker.Container, job: Job): Promise<void> {
  const pack = tar.pack();
  addJobFolders(pack, job);
  pack.finalize();
  await putArchive(container, asNodeStream(pack), '/', 'creating the input and output folders');
}

/**
 * Streams the job's input into the container at `input_dir`: for a receipt, only the run's members, laid
 * out by `tarSubdir` (tag keywords, values from the receipt index; the download stops once the last of
 * them is in); for a later step, the previous output tar as it is. Nothing is held whole in memory: S3 ->
 * tar extract -> tar pack -> Engine API.
 */
export async function stageInput(
  deps: InputDeps,
  container: Docker.Container,
  job: Job,
): Promise<StagedInput> {
  const target = containerDir(job.model.input_dir);
  // A read-only container has volumes at input_dir and output_dir (the engine takes archives only into
  // volumes then): the folders exist, and the input goes straight into its volume.
  const intoVolume = job.model.docker_kwargs.read_only === true;
  if (job.input.kind === 'step') {
    if (!intoVolume) await createJobFolders(container, job);
    const source = await openInput(deps, job.input.bucket, job.input.key);
    const counted = countBytes(source);
    await putArchive(container, counted.stream, target, 'copying the input');
    return { files: -1, bytes: counted.bytes() };
  }
  const { names, source } = await openReceipt(deps, job.input);
  const extract = tar.extract();
  const pack = tar.pack();
  // One upload at the root: the folders first, then the files under input_dir (or into its volume).
  if (!intoVolume) addJobFolders(pack, job);
  const prefix = intoVolume || target === '/' ? '' : `${target.slice(1)}/`;
  let files = 0;
  let bytes = 0;
  // Set once the run's last member is repacked: what follows in the receipt (other series) is not read.
  let complete = false;
  const repack = async (): Promise<void> => {
    for await (const entry of extract) {
      const name = entry.header.type === 'file' ? names.get(entry.header.name) : undefined;
      if (name === undefined) {
        entry.resume();
        continue;
      }
      names.delete(entry.header.name);
      const size = entry.header.size;
      const sink = pack.entry({ name: `${prefix}${name}`, size, mode: 0o644, mtime: new Date(0) });
      await pipeline(entry, sink);
      files++;
      bytes += size;
      if (names.size === 0) {
        complete = true;
        source.destroy();
        break;
      }
    }
    if (names.size > 0) {
      throw new JobFailure('input', `${names.size} selected member(s) are missing from the receipt tar`);
    }
    pack.finalize();
  };
  const reading = pipeline(source, extract).catch((err: unknown) => {
    if (!complete) throw err;
  });
  const repacking = repack().catch((err: unknown) => {
    pack.destroy(err as Error);
    throw err;
  });
  const putting = putArchive(container, asNodeStream(pack), intoVolume ? target : '/', 'copying the input');
  const results = await Promise.allSettled([repacking, reading, putting]);
  const failure = results.find((result) => result.status === 'rejected');
  if (failure) throw inputError(failure.reason);
  return { files, bytes };
}

/**
 * Member name in the receipt tar -> its name in the model input, for the run's members. The index is read
 * as a stream: only the run's members are looked at and kept (their names), whatever the study's size.
 */
export async function receiptLayout(deps: InputDeps, input: ReceiptJobInput): Promise<Map<string, string>> {
  const wanted = new Set(input.members);
  const names = new Map<string, string>();
  const unique = new UniqueNames();
  try {
    const source = await openInput(deps, input.bucket, input.indexKey);
    for await (const record of readReceiptIndexLines(source)) {
      if (!('instance' in record)) continue;
      const { member, elements, sopInstanceUid } = record.instance;
      if (!wanted.has(member) || names.has(member)) continue;
      names.set(member, unique.take(tarMemberName(input.tarSubdir, elements as never, sopInstanceUid)));
    }
  } catch (err) {
    if (err instanceof ReceiptIndexFormatError)
      throw new JobFailure('input', `the receipt index ${input.indexKey} is invalid: ${err.message}`);
    throw inputError(err);
  }
  for (const member of input.members) {
    if (!names.has(member)) throw new JobFailure('input', `member ${member} is not in the receipt index`);
  }
  // In the run's order, as before: the input folder does not depend on the order of the index.
  return new Map(input.members.map((member) => [member, names.get(member) ?? '']));
}

/**
 * The run's layout ({@link receiptLayout}) and the receipt tar, opened at once: the tar's GET goes out while
 * the index is read instead of after it, one S3 round trip and the index's parsing less before the input's
 * first byte. Errors as before: the index's first (the tar, opened for nothing then, is released), then
 * the tar's.
 */
export async function openReceipt(
  deps: InputDeps,
  input: ReceiptJobInput,
): Promise<{ names: Map<string, string>; source: Readable }> {
  const [layout, opened] = await Promise.allSettled([
    receiptLayout(deps, input),
    openInput(deps, input.bucket, input.tarKey),
  ]);
  if (layout.status === 'rejected') {
    if (opened.status === 'fulfilled') opened.value.destroy();
    throw layout.reason;
  }
  if (opened.status === 'rejected') throw opened.reason;
  return { names: layout.value, source: opened.value };
}

/**
 * Names made unique the receiver's way: a repeated name gets `.1`, `.2`, ... before `.dcm`, never
 * overwrites. One map lookup per name, so many repeats of one name cost no more than distinct ones.
 */
class UniqueNames {
  private readonly used = new Set<string>();
  private readonly next = new Map<string, number>();

  take(name: string): string {
    let unique = name;
    if (this.used.has(unique)) {
      const stem = name.endsWith('.dcm') ? name.slice(0, -'.dcm'.length) : name;
      let n = this.next.get(name) ?? 1;
      do unique = `${stem}.${n++}.dcm`;
      while (this.used.has(unique));
      this.next.set(name, n);
    }
    this.used.add(unique);
    return unique;
  }
}

/** Opens an input object; a missing or unreadable one is a {@link JobFailure} (reason input). */
export async function openInput(deps: InputDeps, bucket: string, key: string): Promise<Readable> {
  try {
    return await deps.storage.getStream(bucket, key);
  } catch (err) {
    throw storageInputError(err, key);
  }
}

function storageInputError(err: unknown, key: string): unknown {
  const kind = (err as { kind?: unknown }).kind;
  if (kind === 'gone') return new JobFailure('input', `the input object ${key} does not exist`);
  if (kind === 'permanent')
    return new JobFailure('input', `the input object ${key} cannot be read: ${String(err)}`);
  return err;
}

/** A staging failure as what the job gets: a JobFailure for an unreadable tar, storage errors as they are. */
export function inputError(err: unknown): unknown {
  if (err instanceof JobFailure) return err;
  const kind = (err as { kind?: unknown }).kind;
  if (kind === 'transient' || kind === 'gone' || kind === 'permanent') return err;
  // tar-stream's own errors: the input is not a tar we can read.
  if (
    err instanceof Error &&
    /tar|header|unexpected end/i.test(err.message) &&
    dockerStatus(err) === undefined
  )
    return new JobFailure('input', `the input tar cannot be read: ${err.message}`);
  return err;
}

async function putArchive(
  container: Docker.Container,
  body: Readable,
  path: string,
  what: string,
): Promise<void> {
  try {
    releaseResponse(await container.putArchive(body, { path }));
  } catch (err) {
    body.destroy();
    const status = dockerStatus(err);
    if (status !== undefined && status >= 400 && status < 500)
      throw new JobFailure('input', `${what} into the container failed: ${dockerMessage(err)}`);
    throw asTransientDockerError(err, what);
  }
}

function countBytes(source: Readable): { stream: Readable; bytes: () => number } {
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      total += chunk.length;
      done(null, chunk);
    },
  });
  const out = coalesce();
  pipeline(source, counter, out).catch((err: unknown) => out.destroy(err as Error));
  return { stream: out, bytes: () => total };
}

/** tar-stream's streamx pack as a Node stream (what the Docker client pipes into its request). */
export function asNodeStream(pack: tar.Pack): Readable {
  const out = coalesce();
  pipeline(pack, out).catch((err: unknown) => out.destroy(err as Error));
  return out;
}

/** Drains what dockerode resolved an upload with, when that is a response stream, so its socket is freed. */
export function releaseResponse(response: unknown): void {
  if (
    typeof response === 'object' &&
    response !== null &&
    'resume' in response &&
    typeof response.resume === 'function'
  )
    (response as Readable).resume();
}

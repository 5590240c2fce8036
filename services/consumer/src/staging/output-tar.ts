import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import type { Job } from '@dicomflow/messages';
import type { Storage } from '@dicomflow/storage';
import { JobFailure } from '../jobs/job-failure.js';
import { asTransientDockerError, dockerMessage, isNotFound } from '../docker/docker-errors.js';
import { coalesce, COALESCED_CHUNK_BYTES } from './coalesce.js';
import { containerDir } from './input-tar.js';
import { tooManyEntries } from './output-limits.js';

/** What collecting the output needs. */
export interface OutputDeps {
  readonly storage: Pick<Storage, 'putStream'>;
  /** Largest output (sum of file sizes) accepted, in bytes. */
  readonly maxOutputBytes: number;
  /** Most files and folders in an output (default: no bound). */
  readonly maxOutputEntries?: number;
  /** Folder for the spooled output tar (default: the OS temp folder). */
  readonly spoolDir?: string;
  /** Called once the output is checked and spooled, before the upload (for the step timings). */
  readonly onSpooled?: () => void;
}

/** What was stored. */
export interface StoredOutput {
  readonly files: number;
  /** Sum of the file sizes. */
  readonly bytes: number;
  /** Size of the stored tar. */
  readonly tarBytes: number;
}

/**
 * The name an output entry gets in the stored tar, relative to `output_dir` (the Engine API prefixes every
 * entry with the folder's own name), or a {@link JobFailure} for a name that could land outside it.
 */
export function outputEntryName(archiveName: string): string | undefined {
  if (archiveName.startsWith('/'))
    throw new JobFailure('output', `output entry "${archiveName}" is an absolute path`);
  const parts = archiveName.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new JobFailure('output', `output entry "${archiveName}" contains ".."`);
  const inside = parts.slice(1).join('/');
  return inside === '' ? undefined : inside;
}

/**
 * Streams `output_dir` out of the exited container, checks every entry (regular files and folders only, no
 * absolute or `..` names, at most `maxOutputBytes` in all), repacks it into a spool file (the upload needs
 * the tar's size first and the Engine API does not tell it) and uploads that to `job.output`. Nothing is
 * held whole in memory. (Measured on the test machine, this beat reading the folder twice and streaming
 * the second read into the upload: the upload then waits on the engine and the repacking at once.)
 */
export async function collectOutput(
  deps: OutputDeps,
  container: Docker.Container,
  job: Job,
): Promise<StoredOutput> {
  const spool = await mkdtemp(join(deps.spoolDir ?? tmpdir(), 'dicomflow-output-'));
  const file = join(spool, 'output.tar');
  try {
    const stored = await repackChecked(
      await openOutput(container, job),
      createWriteStream(file),
      deps.maxOutputBytes,
      deps.maxOutputEntries,
    );
    deps.onSpooled?.();
    const reading = createReadStream(file, { highWaterMark: COALESCED_CHUNK_BYTES });
    await deps.storage.putStream(job.output.bucket, job.output.key, reading, stored.tarBytes);
    return stored;
  } finally {
    await rm(spool, { recursive: true, force: true });
  }
}

async function openOutput(container: Docker.Container, job: Job): Promise<Readable> {
  try {
    return (await container.getArchive({ path: containerDir(job.model.output_dir) })) as unknown as Readable;
  } catch (err) {
    if (isNotFound(err))
      throw new JobFailure(
        'output',
        `the output folder ${job.model.output_dir} does not exist: ${dockerMessage(err)}`,
      );
    throw asTransientDockerError(err, 'reading the output');
  }
}

/**
 * Copies the Engine API's tar of the output folder to `file`, entry by entry, refusing what a model must not
 * hand on (see {@link collectOutput}).
 */
export async function repackChecked(
  archive: Readable,
  sink: Writable,
  maxBytes: number,
  maxEntries = Number.POSITIVE_INFINITY,
): Promise<StoredOutput> {
  const extract = tar.extract();
  const pack = tar.pack();
  let files = 0;
  let bytes = 0;
  let entries = 0;
  const check = async (): Promise<void> => {
    for await (const entry of extract) {
      const { header } = entry;
      // The output folder's own entry is not one of the model's.
      if (++entries > maxEntries + 1) throw tooManyEntries(maxEntries);
      const name = outputEntryName(header.name);
      if (header.type !== 'file' && header.type !== 'directory') {
        throw new JobFailure(
          'output',
          `output entry "${header.name}" is a ${header.type}, not a regular file or folder`,
        );
      }
      if (name === undefined || header.type === 'directory') {
        if (name !== undefined)
          pack.entry({
            name: `${name}/`,
            type: 'directory',
            mode: 0o755,
            mtime: header.mtime,
          });
        entry.resume();
        continue;
      }
      const size = header.size;
      bytes += size;
      if (bytes > maxBytes)
        throw new JobFailure('output', `the output is larger than the limit of ${maxBytes} bytes`);
      files++;
      await pipeline(entry, pack.entry({ name, size, mode: 0o644, mtime: header.mtime }));
    }
    pack.finalize();
  };
  const checking = check().catch((err: unknown) => {
    pack.destroy(err as Error);
    archive.destroy();
    throw err;
  });
  const reading = pipeline(archive, extract);
  let tarBytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      tarBytes += chunk.length;
      done(null, chunk);
    },
  });
  const writing = pipeline(pack, counter, coalesce(), sink);
  const results = await Promise.allSettled([checking, reading, writing]);
  const failures = results.flatMap((result) =>
    result.status === 'rejected' ? [result.reason as unknown] : [],
  );
  const refusal = failures.find((err) => err instanceof JobFailure);
  if (refusal) throw refusal;
  if (failures.length > 0) throw asTransientDockerError(failures[0], 'reading the output');
  return { files, bytes, tarBytes };
}

import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { TransientError } from '@dicomflow/runtime';
import type { Job } from '@dicomflow/messages';
import { JobFailure } from '../jobs/job-failure.js';
import { inputError, openInput, openReceipt, type InputDeps, type StagedInput } from './input-tar.js';

/**
 * A tar entry name as a path relative to the input folder, or a {@link JobFailure} (reason input) for one
 * that could land outside it: absolute, or holding `..`. Empty for the folder itself (`./`).
 */
export function inputEntryPath(name: string): string {
  if (name.startsWith('/')) throw new JobFailure('input', `input entry "${name}" is an absolute path`);
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new JobFailure('input', `input entry "${name}" contains ".."`);
  return parts.join('/');
}

/** Creates folders under one root, each once, readable by any user whatever the umask. */
class FolderMaker {
  readonly #made = new Set<string>(['']);

  constructor(readonly root: string) {}

  async ensure(relative: string): Promise<void> {
    if (this.#made.has(relative)) return;
    const at = relative.lastIndexOf('/');
    if (at > 0) await this.ensure(relative.slice(0, at));
    const path = join(this.root, relative);
    try {
      await mkdir(path, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await chmod(path, 0o755);
    this.#made.add(relative);
  }
}

/**
 * Writes one entry's bytes to a new file (never over an existing one), readable by any user. Synchronous
 * calls on the event loop: each is a page-cache copy of one network chunk, cheaper on the 2-core test
 * machine than the thread pool's round trip per open, write and close (the sender spools its downloads
 * the same way, for the same reason).
 */
async function writeFile(root: string, relative: string, body: AsyncIterable<unknown>): Promise<void> {
  let fd: number;
  try {
    fd = openSync(join(root, relative), 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new JobFailure('input', `input entry "${relative}" appears twice`);
    throw err;
  }
  try {
    fchmodSync(fd, 0o644);
    for await (const chunk of body) {
      const bytes = chunk as Buffer;
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes the job's input into `dir` (the job folder's `input`, bind-mounted at `input_dir`), streamed
 * from S3 entry by entry, nothing held whole: for a receipt, only the run's members, laid out by
 * `tarSubdir` (the download stops once the last of them is written); for a later step, the previous
 * output tar's files and folders (names checked: nothing absolute, no `..`, regular files and folders
 * only).
 */
export async function stageInputFolder(deps: InputDeps, job: Job, dir: string): Promise<StagedInput> {
  const { names, source } =
    job.input.kind === 'receipt'
      ? await openReceipt(deps, job.input)
      : { names: undefined, source: await openInput(deps, job.input.bucket, job.input.key) };
  const folders = new FolderMaker(dir);
  const extract = tar.extract();
  let files = 0;
  let bytes = 0;
  // Set once the run's last member is written: what follows in the receipt (other series) is not read.
  let complete = false;
  const write = async (): Promise<void> => {
    for await (const entry of extract) {
      const { header } = entry;
      let relative: string | undefined;
      if (names) {
        relative = header.type === 'file' ? names.get(header.name) : undefined;
        if (relative !== undefined) names.delete(header.name);
      } else {
        if (header.type !== 'file' && header.type !== 'directory')
          throw new JobFailure(
            'input',
            `input entry "${header.name}" is a ${header.type}, not a regular file or folder`,
          );
        relative = inputEntryPath(header.name);
        if (header.type === 'directory') {
          await folders.ensure(relative);
          relative = undefined;
        } else if (relative === '') {
          throw new JobFailure('input', `input entry "${header.name}" has no file name`);
        }
      }
      if (relative === undefined) {
        entry.resume();
        continue;
      }
      const at = relative.lastIndexOf('/');
      if (at > 0) await folders.ensure(relative.slice(0, at));
      await writeFile(dir, relative, entry);
      files++;
      bytes += header.size;
      if (names?.size === 0) {
        complete = true;
        source.destroy();
        break;
      }
    }
    if (names && names.size > 0)
      throw new JobFailure('input', `${names.size} selected member(s) are missing from the receipt tar`);
  };
  const writing = write().catch((err: unknown) => {
    extract.destroy(err as Error);
    source.destroy();
    throw err;
  });
  const reading = pipeline(source, extract).catch((err: unknown) => {
    if (!complete) throw err;
  });
  const results = await Promise.allSettled([writing, reading]);
  const failures = results.flatMap((result) =>
    result.status === 'rejected' ? [result.reason as unknown] : [],
  );
  const failure = failures.find((err) => err instanceof JobFailure) ?? failures[0];
  if (failure !== undefined) throw folderInputError(failure);
  return { files, bytes };
}

/** Local disk errors (full, unwritable) are the host's, not the job's: retried. */
function folderInputError(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code) && (err as { kind?: unknown }).kind === undefined)
    return new TransientError(`writing the input folder failed: ${(err as Error).message}`, { cause: err });
  return inputError(err);
}

import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import type { Job } from '@dicomflow/messages';
import type { Storage } from '@dicomflow/storage';
import { JobFailure } from '../jobs/job-failure.js';
import { asTransientDockerError, dockerMessage, isNotFound } from '../docker/docker-errors.js';
import { containerDir } from './input-tar.js';

/** What collecting the output needs. */
export interface OutputDeps {
  readonly storage: Pick<Storage, 'putFile'>;
  /** Largest output (sum of file sizes) accepted, in bytes. */
  readonly maxOutputBytes: number;
  /** Folder for the spooled output tar (default: the OS temp folder). */
  readonly spoolDir?: string;
}

/** What was stored. */
export interface StoredOutput {
  readonly files: number;
  readonly bytes: number;
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
 * absolute or `..` names, at most `maxOutputBytes` in all), repacks it to a spool file (the tar's size must
 * be known before the upload and the Engine API does not tell it) and uploads that to `job.output`.
 */
export async function collectOutput(
  deps: OutputDeps,
  container: Docker.Container,
  job: Job,
): Promise<StoredOutput> {
  const spool = await mkdtemp(join(deps.spoolDir ?? tmpdir(), 'dicomflow-output-'));
  const file = join(spool, 'output.tar');
  try {
    let archive: Readable;
    try {
      archive = (await container.getArchive({
        path: containerDir(job.model.output_dir),
      })) as unknown as Readable;
    } catch (err) {
      if (isNotFound(err))
        throw new JobFailure(
          'output',
          `the output folder ${job.model.output_dir} does not exist: ${dockerMessage(err)}`,
        );
      throw asTransientDockerError(err, 'reading the output');
    }
    const counts = await repackChecked(archive, file, deps.maxOutputBytes);
    await deps.storage.putFile(job.output.bucket, job.output.key, file);
    return counts;
  } finally {
    await rm(spool, { recursive: true, force: true });
  }
}

/**
 * Copies the Engine API's tar of the output folder to `file`, entry by entry, refusing what a model must not
 * hand on (see {@link collectOutput}).
 */
export async function repackChecked(
  archive: Readable,
  file: string,
  maxBytes: number,
): Promise<StoredOutput> {
  const extract = tar.extract();
  const pack = tar.pack();
  let files = 0;
  let bytes = 0;
  const check = async (): Promise<void> => {
    for await (const entry of extract) {
      const { header } = entry;
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
  const writing = pipeline(pack, createWriteStream(file));
  const results = await Promise.allSettled([checking, reading, writing]);
  const failures = results.flatMap((result) =>
    result.status === 'rejected' ? [result.reason as unknown] : [],
  );
  const refusal = failures.find((err) => err instanceof JobFailure);
  if (refusal) throw refusal;
  if (failures.length > 0) throw asTransientDockerError(failures[0], 'reading the output');
  return { files, bytes };
}

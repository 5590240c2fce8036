import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { NotAnInstanceError, readInstanceFile, type InstanceFile } from '@dicomflow/dicom';

/** One DICOM file of the output, by its tar member name. */
export interface OutputInstance {
  readonly member: string;
  readonly file: InstanceFile;
}

/** A member that is not sent, and why. */
export interface SkippedMember {
  readonly member: string;
  readonly reason: string;
}

/** The output of a run, unpacked: its DICOM files (in tar order) and what was skipped. */
export interface SpooledOutput {
  readonly dir: string;
  readonly instances: readonly OutputInstance[];
  readonly skipped: readonly SkippedMember[];
  /** Removes the unpacked files. */
  remove(): Promise<void>;
}

const META_READS_AT_ONCE = 16;

/** `work` on every item, `size` at a time, results in input order. */
async function inBatches<T, R>(
  items: readonly T[],
  size: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  for (let at = 0; at < items.length; at += size)
    results.push(...(await Promise.all(items.slice(at, at + size).map(work))));
  return results;
}

/** A tar that cannot be read: sending it again will not help. */
export class BadOutputTarError extends Error {
  override readonly name = 'BadOutputTarError';
}

/**
 * Streams a tar into `dir`, one file per regular member, named by its position (member names never become
 * paths, so `../` in a name cannot escape the folder), then reads each file's DICOM meta group. Only one
 * member's bytes pass through memory at a time, in stream-sized chunks.
 */
export async function spoolOutput(tarStream: Readable, dir: string): Promise<SpooledOutput> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const files: { member: string; path: string }[] = [];
  const skipped: SkippedMember[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const member = header.name;
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      if (header.type !== 'directory')
        skipped.push({ member, reason: `not a regular file (tar type ${header.type})` });
      stream.resume();
      stream.once('end', next);
      return;
    }
    const path = join(dir, `${String(files.length).padStart(6, '0')}.dcm`);
    files.push({ member, path });
    pipeline(stream, createWriteStream(path)).then(
      () => {
        next();
      },
      (err: unknown) => {
        next(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
  try {
    await pipeline(tarStream, extract);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    const text = err instanceof Error ? err.message : String(err);
    // tar-stream reports a malformed archive with plain errors; network failures carry a code.
    if ((err as NodeJS.ErrnoException).code === undefined)
      throw new BadOutputTarError(`unreadable tar: ${text}`);
    throw err;
  }
  // Meta groups are read a few files at a time (each is one small read); tar order is kept.
  const read = await inBatches(
    files,
    META_READS_AT_ONCE,
    async ({ member, path }): Promise<OutputInstance | SkippedMember> => {
      try {
        return { member, file: await readInstanceFile(path) };
      } catch (err) {
        if (!(err instanceof NotAnInstanceError)) throw err;
        await rm(path, { force: true });
        return { member, reason: err.message };
      }
    },
  );
  const instances: OutputInstance[] = [];
  for (const entry of read) {
    if ('file' in entry) instances.push(entry);
    else skipped.push(entry);
  }
  return {
    dir,
    instances,
    skipped,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

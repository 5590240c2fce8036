import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout } from 'node:timers/promises';
import tar from 'tar-stream';
import { TransientError } from '@dicomflow/runtime';
import type { Job } from '@dicomflow/messages';
import { JobFailure } from '../jobs/job-failure.js';
import { coalesce, COALESCED_CHUNK_BYTES } from './coalesce.js';
import type { OutputDeps, StoredOutput } from './output-tar.js';

const BLOCK = 512;
const END_OF_ARCHIVE = 2 * BLOCK;

/** One entry of the output folder, as it goes into the stored tar. */
export interface OutputEntry {
  /** Name in the tar, relative to the output folder (folders end with `/`). */
  readonly name: string;
  readonly type: 'file' | 'directory';
  /** Path on the consumer's disk. */
  readonly path: string;
  readonly size: number;
  readonly mtime: Date;
}

/** The checked content of an output folder. */
export interface ScannedOutput {
  readonly entries: readonly OutputEntry[];
  readonly files: number;
  /** Sum of the file sizes. */
  readonly bytes: number;
}

function kindOf(stats: Awaited<ReturnType<typeof lstat>>): string {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isBlockDevice()) return 'block-device';
  if (stats.isCharacterDevice()) return 'character-device';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isSocket()) return 'socket';
  return 'special file';
}

/**
 * Walks the output folder with `lstat` (links are never followed): regular files and folders only (a
 * symlink, device, fifo or socket fails the job naming it; a file with several hard links is copied as a
 * regular file), at most `maxBytes` in all. Entries come sorted by name, folders before their content.
 */
export async function scanOutputFolder(dir: string, maxBytes: number): Promise<ScannedOutput> {
  const entries: OutputEntry[] = [];
  let files = 0;
  let bytes = 0;
  const walk = async (relative: string): Promise<void> => {
    const names = (await readdir(relative === '' ? dir : join(dir, relative))).sort();
    for (const name of names) {
      const entryName = relative === '' ? name : `${relative}/${name}`;
      const path = join(dir, entryName);
      const stats = await lstat(path);
      if (stats.isDirectory()) {
        entries.push({ name: `${entryName}/`, type: 'directory', path, size: 0, mtime: stats.mtime });
        await walk(entryName);
      } else if (stats.isFile()) {
        bytes += stats.size;
        if (bytes > maxBytes)
          throw new JobFailure('output', `the output is larger than the limit of ${maxBytes} bytes`);
        files++;
        entries.push({ name: entryName, type: 'file', path, size: stats.size, mtime: stats.mtime });
      } else {
        throw new JobFailure(
          'output',
          `output entry "${entryName}" is a ${kindOf(stats)}, not a regular file or folder`,
        );
      }
    }
  };
  try {
    await walk('');
  } catch (err) {
    if (err instanceof JobFailure) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new JobFailure(
        'output',
        `the output folder changed while it was read: ${(err as Error).message}`,
      );
    throw new TransientError(`reading the output folder failed: ${(err as Error).message}`, { cause: err });
  }
  return { entries, files, bytes };
}

/** True when tar-stream writes the name in one plain ustar header (ASCII, fits name + prefix). */
function fitsOneHeader(name: string): boolean {
  if (Buffer.byteLength(name) !== name.length) return false;
  let rest = name;
  let prefix = '';
  while (rest.length > 100) {
    const at = rest.indexOf('/');
    if (at === -1) return false;
    prefix += prefix ? `/${rest.slice(0, at)}` : rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  return prefix.length <= 155;
}

/** Bytes tar-stream writes before an entry's content: one header, or a pax header for a long name. */
async function headerBytes(entry: OutputEntry): Promise<number> {
  if (fitsOneHeader(entry.name)) return BLOCK;
  // Rare: the pax header's size depends on the name only, so an empty entry of that name measures it.
  const pack = tar.pack();
  const header = { name: entry.name, type: entry.type, mtime: entry.mtime };
  if (entry.type === 'file') pack.entry(header, Buffer.alloc(0));
  else pack.entry(header);
  pack.finalize();
  let total = 0;
  await pipeline(
    pack,
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        total += chunk.length;
        done();
      },
    }),
  );
  return total - END_OF_ARCHIVE;
}

/** The exact size of the tar {@link outputTarStream} writes for these entries. */
export async function outputTarSize(entries: readonly OutputEntry[]): Promise<number> {
  let total = END_OF_ARCHIVE;
  for (const entry of entries) total += (await headerBytes(entry)) + Math.ceil(entry.size / BLOCK) * BLOCK;
  return total;
}

/**
 * Streams the tar of the scanned entries (files 0644, folders 0755, their mtimes), one file open at a time.
 * `failure` tells why the stream broke when a file changed or vanished after the scan.
 */
export function outputTarStream(entries: readonly OutputEntry[]): {
  stream: Readable;
  /** Resolves once every entry was read: to why the tar broke, or undefined. */
  failure: Promise<unknown>;
} {
  const pack = tar.pack();
  const out = new PassThrough({ highWaterMark: COALESCED_CHUNK_BYTES });
  const fill = async (): Promise<void> => {
    for (const entry of entries) {
      if (entry.type === 'directory') {
        pack.entry({ name: entry.name, type: 'directory', mode: 0o755, mtime: entry.mtime });
        continue;
      }
      const header = { name: entry.name, mode: 0o644, mtime: entry.mtime };
      if (entry.size === 0) {
        pack.entry(header, Buffer.alloc(0));
        continue;
      }
      const sink = pack.entry({ ...header, size: entry.size });
      // Never more than the scanned size; fewer bytes fail the entry ("Size mismatch").
      const body = createReadStream(entry.path, {
        start: 0,
        end: entry.size - 1,
        highWaterMark: COALESCED_CHUNK_BYTES,
      });
      try {
        await pipeline(body, sink);
      } catch (err) {
        // The file's own fault (shorter than scanned, gone), not the upload's stopping to read.
        if (body.errored !== null || (err as Error).message === 'Size mismatch')
          throw new JobFailure(
            'output',
            `output file "${entry.name}" changed while it was stored: ${(err as Error).message}`,
          );
        throw err;
      }
    }
    pack.finalize();
  };
  pipeline(pack, coalesce(), out).catch((err: unknown) => out.destroy(err as Error));
  const failure = fill().then(
    () => undefined,
    (err: unknown) => {
      pack.destroy(err as Error);
      out.destroy(err as Error);
      return err;
    },
  );
  return { stream: out, failure };
}

/**
 * Stores the job folder's output: scans it (see {@link scanOutputFolder}), computes the tar's exact size,
 * then streams the tar straight into the upload to `job.output`: no spool file, nothing held whole.
 */
export async function collectOutputFolder(deps: OutputDeps, dir: string, job: Job): Promise<StoredOutput> {
  const scanned = await scanOutputFolder(dir, deps.maxOutputBytes);
  const tarBytes = await outputTarSize(scanned.entries);
  deps.onSpooled?.();
  const { stream, failure } = outputTarStream(scanned.entries);
  try {
    await deps.storage.putStream(job.output.bucket, job.output.key, stream, tarBytes);
  } catch (err) {
    // The upload stops reading when the tar breaks; the tar's own reason (a file changed) comes first.
    const cause = await Promise.race([failure, setTimeout(1000, undefined)]);
    if (cause instanceof JobFailure) throw cause;
    throw err;
  }
  return { files: scanned.files, bytes: scanned.bytes, tarBytes };
}

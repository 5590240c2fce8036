import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  END_OF_ARCHIVE_BYTES,
  tarChunks,
  tarHeader,
  TarMemberReadError,
  TarMemberSizeError,
  tarPadding,
  type TarHeaderFields,
  type TarMember,
} from '@dicomflow/dicom';
import { TransientError } from '@dicomflow/runtime';
import type { Job } from '@dicomflow/messages';
import { JobFailure } from '../jobs/job-failure.js';
import { COALESCED_CHUNK_BYTES } from './coalesce.js';
import { tooManyEntries } from './output-limits.js';
import type { OutputDeps, StoredOutput } from './output-tar.js';

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

/**
 * Entries looked at between two turns of the event loop. The walk is on the path between the model's exit
 * and the upload, and synchronous `readdir` and `lstat` calls (of inodes the model just wrote, cached) took
 * ~1 ms for 200 files against ~10 ms through the thread pool; the turns keep a walk of MAX_OUTPUT_ENTRIES
 * from holding the loop for long.
 */
const WALK_BATCH = 1000;

function kindOf(stats: Stats): string {
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
export async function scanOutputFolder(
  dir: string,
  maxBytes: number,
  maxEntries = Number.POSITIVE_INFINITY,
): Promise<ScannedOutput> {
  const entries: OutputEntry[] = [];
  let files = 0;
  let bytes = 0;
  let looked = 0;
  const walk = async (relative: string): Promise<void> => {
    const names = readdirSync(relative === '' ? dir : join(dir, relative)).sort();
    for (const name of names) {
      // Empty files and folders hold no bytes but each costs memory here and a header in the tar.
      if (entries.length >= maxEntries) throw tooManyEntries(maxEntries);
      if (++looked % WALK_BATCH === 0) await nextTurn();
      const entryName = relative === '' ? name : `${relative}/${name}`;
      const path = join(dir, entryName);
      const stats = lstatSync(path);
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
    // What the model wrote with modes that keep this consumer out (it runs as root in compose).
    if (code === 'EACCES' || code === 'EPERM')
      throw new JobFailure('output', `the output cannot be read: ${(err as Error).message}`);
    throw new TransientError(`reading the output folder failed: ${(err as Error).message}`, { cause: err });
  }
  return { entries, files, bytes };
}

/** The exact size of the tar {@link outputTarStream} writes for these entries. */
export function outputTarSize(entries: readonly OutputEntry[]): number {
  let total = END_OF_ARCHIVE_BYTES;
  for (const entry of entries)
    total += tarHeader(headerOf(entry)).length + entry.size + tarPadding(entry.size);
  return total;
}

function headerOf(entry: OutputEntry): TarHeaderFields {
  return {
    name: entry.name,
    type: entry.type,
    size: entry.size,
    mode: entry.type === 'directory' ? 0o755 : 0o644,
    mtime: entry.mtime,
  };
}

/**
 * Streams the tar of the scanned entries (files 0644, folders 0755, their mtimes), one file open at a time,
 * its chunks handed on as read (no repacking copy). `failure()` tells why the stream broke when a file
 * changed or vanished after the scan.
 */
export function outputTarStream(entries: readonly OutputEntry[]): {
  stream: Readable;
  failure: () => unknown;
} {
  let failure: unknown;
  // Headers made as the tar reaches them: 20,000 of them made up front were 20,000 Buffers held at once.
  function* members(): Generator<TarMember> {
    for (const entry of entries) yield { ...entry, header: tarHeader(headerOf(entry)) };
  }
  async function* generate(): AsyncGenerator<Buffer> {
    try {
      yield* tarChunks(members(), COALESCED_CHUNK_BYTES);
    } catch (err) {
      if (err instanceof TarMemberReadError)
        failure = new JobFailure(
          'output',
          `output file "${err.member}" cannot be read (changed after the walk?): ${(err.cause as Error).message}`,
        );
      else if (err instanceof TarMemberSizeError)
        failure = new JobFailure(
          'output',
          `output file "${err.member}" changed while it was stored: ${err.read} of its ${err.size} bytes remained`,
        );
      throw failure ?? err;
    }
  }
  return { stream: Readable.from(generate(), { objectMode: false }), failure: () => failure };
}

/**
 * Stores the job folder's output, as {@link scanOutputFolder} found it: computes the tar's exact size, then
 * streams the tar straight into the upload to `job.output`: no spool file, nothing held whole.
 */
export async function storeOutputFolder(
  deps: Pick<OutputDeps, 'storage'>,
  scanned: ScannedOutput,
  job: Job,
): Promise<StoredOutput> {
  const tarBytes = outputTarSize(scanned.entries);
  const { stream, failure } = outputTarStream(scanned.entries);
  try {
    await deps.storage.putStream(job.output.bucket, job.output.key, stream, tarBytes);
  } catch (err) {
    // The tar's own reason (a file changed) rather than the upload's broken body.
    const cause = failure();
    if (cause instanceof JobFailure) throw cause;
    throw err;
  }
  return { files: scanned.files, bytes: scanned.bytes, tarBytes };
}

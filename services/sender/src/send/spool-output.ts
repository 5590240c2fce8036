import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import {
  INSTANCE_HEAD_MAX_BYTES,
  metaGroupEnd,
  NotAnInstanceError,
  parseInstanceHead,
} from '@dicomflow/dicom';
import { StorageError } from '@dicomflow/storage';
import type { OutputFeed, OutputInstance, SkippedMember } from './output-feed.js';

export type { OutputInstance, SkippedMember } from './output-feed.js';

/** A tar that cannot be read: sending it again will not help. */
export class BadOutputTarError extends Error {
  override readonly name = 'BadOutputTarError';
}

/**
 * Streams a tar into `dir`, one file per regular member, named by its position (member names never become
 * paths, so `../` in a name cannot escape the folder), and hands each complete DICOM file to `feed` as soon
 * as it is on disk (tar order), so targets send while the rest downloads. Members that are not DICOM are
 * removed and listed as skipped. Only one member's bytes pass through memory at a time, in stream-sized
 * chunks. Resolves once every member is in the feed and ends it; on failure the feed fails with the same
 * error (a {@link BadOutputTarError} for a malformed archive). The caller removes `dir`.
 *
 * Files are written with synchronous calls on the event loop: each is a page-cache copy of one network
 * chunk (microseconds), while the thread pool's round trip (a wake-up of a pool thread and of this one, per
 * open, write and close) cost more than the copy on the 2-core test machine: for a 105 MB output that was
 * about 2000 round trips.
 */
export async function spoolOutput(tarStream: Readable, dir: string, feed: OutputFeed): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await extractInto(tarStream, dir, feed);
    feed.end();
  } catch (err) {
    const error = asSpoolError(err);
    feed.fail(error);
    throw error;
  }
}

async function extractInto(tarStream: Readable, dir: string, feed: OutputFeed): Promise<void> {
  let files = 0;
  // Meta groups are read while the next member downloads; this chain hands them to the feed in tar order.
  let published: Promise<void> = Promise.resolve();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const member = header.name;
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      if (header.type !== 'directory')
        published = published.then(() => {
          feed.skip({ member, reason: `not a regular file (tar type ${header.type})` });
        });
      stream.resume();
      stream.once('end', next);
      return;
    }
    const path = join(dir, `${String(files++).padStart(6, '0')}.dcm`);
    const file = new MemberFile(path);
    stream.on('data', (chunk: unknown) => {
      file.write(chunk as Buffer);
    });
    // Closed without an end (the archive was abandoned): the descriptor must not stay open.
    stream.once('close', () => file.close());
    stream.once('error', (err: Error) => {
      file.close();
      next(err);
    });
    stream.once('end', () => {
      const failure = file.close();
      if (failure) {
        next(failure);
        return;
      }
      // A member cut short must never be sent as if it were whole.
      if (file.written !== header.size) {
        next(new Error(`tar member ended after ${file.written} of ${header.size} bytes`));
        return;
      }
      // The meta group is parsed from the copy taken while streaming, not read back from the file: four
      // file system calls less per member, on the path between download and first C-STORE.
      const entry = classify(member, path, header.size, file.head());
      published = published.then(async () => {
        if ('file' in entry) feed.add(entry);
        else {
          await rm(path, { force: true });
          feed.skip(entry);
        }
      });
      published.catch(() => undefined);
      next();
    });
  });
  await pipeline(tarStream, extract);
  await published;
}

function classify(member: string, path: string, size: number, head: Buffer): OutputInstance | SkippedMember {
  try {
    return { member, file: parseInstanceHead(path, size, head) };
  } catch (err) {
    if (!(err instanceof NotAnInstanceError)) throw err;
    return { member, reason: err.message };
  }
}

/** Bytes of a file start looked at first; more (up to 64 KiB) only when its meta group goes on. */
const FIRST_HEAD_BYTES = 4096;

/**
 * One member's file, written synchronously chunk by chunk, keeping a copy of its first bytes: as many as
 * reading the file's meta group would read (readInstanceFile), 4 KiB, or up to 64 KiB when the meta group
 * is longer. The first write error is kept (later chunks are dropped) and returned by {@link close}.
 */
class MemberFile {
  #fd: number | undefined;
  #failure: Error | undefined;
  #chunks: Buffer[] = [];
  #headLength = 0;
  #wanted = FIRST_HEAD_BYTES;
  written = 0;

  constructor(path: string) {
    try {
      this.#fd = openSync(path, 'w');
    } catch (err) {
      this.#failure = err as Error;
    }
  }

  write(chunk: Buffer): void {
    if (this.#fd === undefined) return;
    try {
      for (let at = 0; at < chunk.length;) at += writeSync(this.#fd, chunk, at, chunk.length - at);
    } catch (err) {
      this.#failure = err as Error;
      this.close();
      return;
    }
    this.written += chunk.length;
    if (this.#headLength < this.#wanted) {
      const part = Buffer.from(chunk.subarray(0, this.#wanted - this.#headLength));
      this.#chunks.push(part);
      this.#headLength += part.length;
      if (this.#headLength === FIRST_HEAD_BYTES && metaGroupEnd(this.head()) === undefined)
        this.#wanted = INSTANCE_HEAD_MAX_BYTES;
    }
  }

  /** Closes the file (once); returns the first error writing or closing it met. */
  close(): Error | undefined {
    if (this.#fd !== undefined) {
      const fd = this.#fd;
      this.#fd = undefined;
      try {
        closeSync(fd);
      } catch (err) {
        this.#failure ??= err as Error;
      }
    }
    return this.#failure;
  }

  head(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }
}

function asSpoolError(err: unknown): Error {
  // The download broke (S3 away, connection cut): its kind decides, never "a bad tar".
  if (err instanceof BadOutputTarError || err instanceof StorageError) return err;
  const text = err instanceof Error ? err.message : String(err);
  // tar-stream reports a malformed archive with plain errors; network and file system failures carry a code.
  if ((err as NodeJS.ErrnoException).code === undefined)
    return new BadOutputTarError(`unreadable tar: ${text}`);
  return err instanceof Error ? err : new Error(text);
}

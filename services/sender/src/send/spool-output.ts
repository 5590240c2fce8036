import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { NotAnInstanceError, readInstanceFile } from '@dicomflow/dicom';
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
    const out = createWriteStream(path);
    pipeline(stream, out).then(
      () => {
        // A member cut short must never be sent as if it were whole.
        if (out.bytesWritten !== header.size) {
          next(new Error(`tar member ended after ${out.bytesWritten} of ${header.size} bytes`));
          return;
        }
        const read = classify(member, path);
        read.catch(() => undefined);
        published = published.then(async () => {
          const entry = await read;
          if ('file' in entry) feed.add(entry);
          else feed.skip(entry);
        });
        published.catch(() => undefined);
        next();
      },
      (err: unknown) => {
        next(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
  await pipeline(tarStream, extract);
  await published;
}

async function classify(member: string, path: string): Promise<OutputInstance | SkippedMember> {
  try {
    return { member, file: await readInstanceFile(path) };
  } catch (err) {
    if (!(err instanceof NotAnInstanceError)) throw err;
    await rm(path, { force: true });
    return { member, reason: err.message };
  }
}

function asSpoolError(err: unknown): Error {
  if (err instanceof BadOutputTarError) return err;
  const text = err instanceof Error ? err.message : String(err);
  // tar-stream reports a malformed archive with plain errors; network and file system failures carry a code.
  if ((err as NodeJS.ErrnoException).code === undefined)
    return new BadOutputTarError(`unreadable tar: ${text}`);
  return err instanceof Error ? err : new Error(text);
}

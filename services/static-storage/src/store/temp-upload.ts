import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Sha256Stream } from './hashing.js';

/** An upload received in full into a temporary file. */
export interface ReceivedUpload {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** Removes the temporary file; safe to call more than once. */
  discard(): Promise<void>;
}

/**
 * Streams `body` into a new temporary file under `tempDirectory`, hashing it on the way, so that the S3
 * put afterwards knows size and sha256 up front and the upload is never held in memory. A body that
 * breaks off (client gone, aborted) leaves no file behind.
 */
export async function receiveToTempFile(body: Readable, tempDirectory: string): Promise<ReceivedUpload> {
  const folder = await mkdtemp(join(tempDirectory, 'static-upload-'));
  const discard = () => rm(folder, { recursive: true, force: true });
  const path = join(folder, 'upload.tar');
  const hasher = new Sha256Stream();
  try {
    await pipeline(body, hasher, createWriteStream(path, { flags: 'wx' }));
  } catch (err) {
    await discard();
    throw err;
  }
  return { path, size: hasher.bytes, sha256: hasher.digest(), discard };
}

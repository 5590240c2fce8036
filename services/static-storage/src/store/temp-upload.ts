import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError } from '@dicomflow/runtime';
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
export async function receiveToTempFile(
  body: Readable,
  tempDirectory: string,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<ReceivedUpload> {
  const folder = await mkdtemp(join(tempDirectory, 'static-upload-'));
  const discard = () => rm(folder, { recursive: true, force: true });
  const path = join(folder, 'upload.tar');
  const hasher = new Sha256Stream();
  try {
    await pipeline(body, bounded(maxBytes), hasher, createWriteStream(path, { flags: 'wx' }));
  } catch (err) {
    await discard();
    throw err;
  }
  return { path, size: hasher.bytes, sha256: hasher.digest(), discard };
}

/** Passes bytes on until more than `maxBytes` went through, then fails with 413. */
function bounded(maxBytes: number): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) done(tooLarge(maxBytes));
      else done(null, chunk);
    },
  });
}

/** The refusal of an upload larger than STATIC_MAX_UPLOAD_BYTES. */
export function tooLarge(maxBytes: number): HttpError {
  return new HttpError(
    413,
    `the upload is larger than ${maxBytes} bytes (STATIC_MAX_UPLOAD_BYTES): nothing was stored`,
  );
}

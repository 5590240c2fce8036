import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Client } from 'minio';
import { noteBufferBytes } from '@dicomflow/runtime';
import { sanitizeEtag } from './object-headers.js';
import { toStorageError } from './storage-error.js';

/**
 * A multipart upload whose parts stream straight from the source: each part is one PUT of a known length
 * (the object's size is known), sent as the bytes come. The minio client's own putObject gathers every part
 * in memory first (64 MiB at production's part size, more while it is hashed and sent), which kept a
 * service's memory in proportion to the part size for every large study it moved.
 *
 * Earlier incomplete uploads of the same key (a previous attempt cut short by an S3 outage) are aborted
 * first, so a retry never leaves one behind; a failed upload is aborted by the caller.
 */
export async function uploadParts(
  client: Client,
  bucket: string,
  key: string,
  source: Readable,
  size: number,
  partSize: number,
  headers: Record<string, string>,
): Promise<{ etag: string; uploadId: string }> {
  for (const uploadId of await incompleteUploadIds(client, bucket, key)) {
    await client.abortMultipartUpload(bucket, key, uploadId);
  }
  const uploadId = await client.initiateNewMultipartUpload(bucket, key, headers);
  const parts = new PartReader(source);
  const etags: Array<{ part: number; etag: string }> = [];
  for (let part = 1, offset = 0; offset < size; part++) {
    const length = Math.min(partSize, size - offset);
    const body = Readable.from(parts.take(length), { objectMode: false });
    const query = `partNumber=${part}&uploadId=${encodeURIComponent(uploadId)}`;
    etags.push({ part, etag: await streamedPut(client, { bucket, key, query }, body, length, {}) });
    offset += length;
  }
  // The size check of the caller's stream fires only while it is read: read what follows the last part.
  await parts.drain();
  const result = await client.completeMultipartUpload(bucket, key, uploadId, etags);
  return { etag: sanitizeEtag(result.etag), uploadId };
}

/**
 * A multipart upload whose parts the caller sends as their bytes become available (before the object's
 * size is known): every part but the last must be at least 5 MiB, parts go up one after another.
 */
export interface PartedUpload {
  readonly uploadId: string;
  /** Parts sent so far. */
  readonly parts: number;
  /** Sends the next part: exactly `length` bytes of `body`. */
  uploadPart(body: Readable, length: number): Promise<void>;
  /** Completes the object from the parts sent; resolves with its ETag. */
  complete(): Promise<{ etag: string }>;
  /** Aborts the upload, freeing its parts (best effort: a failure is not reported). */
  abort(): Promise<void>;
}

/** The S3 limit on parts per upload. */
const MAX_PARTS = 10_000;

/** A multipart upload begun with `uploadId`, its parts sent one by one (see {@link PartedUpload}). */
export function partedUpload(
  client: Client,
  upload: { readonly bucket: string; readonly key: string; readonly uploadId: string },
): PartedUpload {
  const { bucket, key, uploadId } = upload;
  const etags: Array<{ part: number; etag: string }> = [];
  const context = (operation: string) => ({ operation, bucket, key });
  return {
    uploadId,
    get parts() {
      return etags.length;
    },
    async uploadPart(body, length) {
      const part = etags.length + 1;
      if (part > MAX_PARTS) throw new Error(`an upload holds at most ${MAX_PARTS} parts`);
      const query = `partNumber=${part}&uploadId=${encodeURIComponent(uploadId)}`;
      try {
        etags.push({ part, etag: await streamedPut(client, { bucket, key, query }, body, length, {}) });
      } catch (err) {
        body.destroy();
        throw toStorageError(err, context('uploadPart'));
      }
    },
    async complete() {
      try {
        const result = await client.completeMultipartUpload(bucket, key, uploadId, etags);
        return { etag: sanitizeEtag(result.etag) };
      } catch (err) {
        throw toStorageError(err, context('completeMultipartUpload'));
      }
    },
    async abort() {
      await client.abortMultipartUpload(bucket, key, uploadId).catch(() => undefined);
    },
  };
}

/**
 * One PUT whose body streams as it comes, `length` bytes (a whole object, or with `query` one part of a
 * multipart upload); resolves with the ETag once the server answered 200.
 */
export async function streamedPut(
  client: Client,
  target: { readonly bucket: string; readonly key: string; readonly query?: string },
  body: Readable,
  length: number,
  headers: Record<string, string>,
): Promise<string> {
  const response: IncomingMessage = await client.makeRequestStreamAsync(
    {
      method: 'PUT',
      bucketName: target.bucket,
      objectName: target.key,
      ...(target.query === undefined ? {} : { query: target.query }),
      headers: { ...headers, 'content-length': String(length) },
    },
    body,
    '',
    [200],
    '',
  );
  response.resume();
  await finished(response);
  const etag = response.headers.etag;
  return sanitizeEtag(typeof etag === 'string' ? etag : undefined);
}

/** The ids of the incomplete multipart uploads of exactly `key` (MinIO lists them per object name). */
export async function incompleteUploadIds(client: Client, bucket: string, key: string): Promise<string[]> {
  const ids: string[] = [];
  const uploads = client.listIncompleteUploads(bucket, key, true) as AsyncIterable<{
    key: string;
    uploadId: string;
  }>;
  for await (const upload of uploads) if (upload.key === key) ids.push(upload.uploadId);
  return ids;
}

/** Hands out a stream's bytes in consecutive runs of given lengths, carrying a chunk's rest to the next. */
class PartReader {
  private readonly chunks: AsyncIterator<Buffer>;
  private rest: Buffer = Buffer.alloc(0);

  constructor(source: Readable) {
    this.chunks = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** Reads the source to its end; bytes past the parts mean it was longer than its declared size. */
  async drain(): Promise<void> {
    let extra = this.rest.length;
    for (let next = await this.chunks.next(); next.done !== true; next = await this.chunks.next()) {
      extra += next.value.length;
    }
    if (extra > 0) throw new Error(`the stream went on ${extra} bytes past its declared size`);
  }

  /** The next `length` bytes; the source ending first is an error (the size check names it). */
  async *take(length: number): AsyncGenerator<Buffer, void, undefined> {
    let remaining = length;
    while (remaining > 0) {
      if (this.rest.length === 0) {
        const next = await this.chunks.next();
        if (next.done === true) throw new Error(`the stream ended ${remaining} bytes before the part did`);
        this.rest = next.value;
        continue;
      }
      const piece = this.rest.subarray(0, remaining);
      this.rest = this.rest.subarray(piece.length);
      remaining -= piece.length;
      noteBufferBytes(piece.length);
      yield piece;
    }
  }
}

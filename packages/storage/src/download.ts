import { PassThrough, Readable } from 'node:stream';
import type { Client } from 'minio';
import { StorageError, kindOfCode, toStorageError, type StorageErrorContext } from './storage-error.js';

/**
 * How long a download's presigned URL is valid. It is used at once, and only its start has to fall
 * inside the window: a transfer under way is not cut when the URL expires.
 */
export const DOWNLOAD_URL_SECONDS = 15 * 60;

/**
 * Opens a GET of a presigned URL with Node's built-in fetch (undici) and returns the body as a Node
 * stream. Why not the minio client's getObject: on the test machine undici reads a 105 MB object with a
 * third to half of the CPU that Node's http client needs (bench: 80-140 ms against 200-290 ms), and the
 * sender and the consumer download every study. A refused request fails with a {@link StorageError} of
 * the S3 error code's kind; a body cut short fails the stream with a transient StorageError that carries
 * the network error's code.
 */
export async function openDownload(url: string, context: StorageErrorContext): Promise<Readable> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw toStorageError(networkError(err), context);
  }
  if (!response.ok) {
    const body = await response.text().catch(() => '');
    throw refusal(response.status, body, context);
  }
  if (response.body === null) return Readable.from([]);
  return bodyStream(response.body, context);
}

/**
 * Opens an object with the minio client's own GET (its https agent, so its CA), with the same errors as
 * {@link openDownload}: a refusal rejects with a StorageError, a body cut short fails the stream with one.
 */
export async function getWithClient(
  client: Client,
  context: StorageErrorContext & { bucket: string; key: string },
): Promise<Readable> {
  let source: Readable;
  try {
    source = await client.getObject(context.bucket, context.key);
  } catch (err) {
    throw toStorageError(err, context);
  }
  const body = new PassThrough();
  source.on('error', (err) => body.destroy(toStorageError(err, context)));
  body.on('close', () => source.destroy());
  source.pipe(body);
  return body;
}

/** The response body as a Node stream whose errors are StorageErrors (one chunk read ahead at most). */
function bodyStream(body: ReadableStream<Uint8Array>, context: StorageErrorContext): Readable {
  const reader = body.getReader();
  return new Readable({
    read() {
      const pull = (): void => {
        reader.read().then(
          ({ done, value }) => {
            if (done) this.push(null);
            // An empty chunk pushed would not ask for the next one: read on instead.
            else if (value.byteLength === 0) pull();
            else this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
          },
          (err: unknown) => {
            this.destroy(toStorageError(networkError(err), context));
          },
        );
      };
      pull();
    },
    destroy(err, callback) {
      // Cancelling closes the connection; a read still pending then ends, and its push is ignored.
      reader.cancel(err ?? undefined).catch(() => undefined);
      callback(err);
    },
  });
}

/**
 * undici reports a failed connection as `TypeError: fetch failed` (or `terminated` mid-body) with the
 * socket's error as its cause: the cause's code and message are what tell retry from give up.
 */
function networkError(err: unknown): unknown {
  if (!(err instanceof Error) || !(err.cause instanceof Error)) return err;
  const code = (err.cause as NodeJS.ErrnoException).code;
  const wrapped = new Error(`${err.message}: ${err.cause.message}`, { cause: err });
  return Object.assign(wrapped, { code: typeof code === 'string' ? code : 'ECONNRESET' });
}

/** A non-2xx answer: its S3 error code (from the XML body) decides the kind; a bare 404 is gone. */
function refusal(status: number, body: string, context: StorageErrorContext): StorageError {
  const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? (status === 404 ? 'NotFound' : `HTTP${status}`);
  const detail = /<Message>([^<]*)<\/Message>/.exec(body)?.[1] ?? `HTTP ${status}`;
  const where = [context.bucket, context.key].filter((part) => part !== undefined).join('/');
  const kind = status >= 500 || status === 429 ? 'transient' : kindOfCode(code);
  return new StorageError(kind, `storage ${context.operation} ${where} failed: ${detail}`, {
    ...context,
    code,
  });
}

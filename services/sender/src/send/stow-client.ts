import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { getCACertificates } from 'node:tls';
import { CERTIFICATE_ERROR_CODES } from '@dicomflow/dicom';
import type { StowAnswer } from './stow-response.js';
import { SpoolReadError, StowError } from './stow-error.js';

/** One file to store: where it is spooled and its size (checked while it is read). */
export interface StowFile {
  readonly path: string;
  readonly size: number;
}

/** One STOW-RS request. */
export interface StowPost {
  /** The STOW-RS endpoint (`<base>/studies`, see {@link stowEndpoint}). */
  readonly endpoint: URL;
  readonly files: readonly StowFile[];
  /** Sent as `Authorization: Bearer <token>` when given. */
  readonly token?: string;
  /** No traffic either way for this long (connecting, sending, waiting for the answer): transient failure. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  /** Keeps the connection between the requests of one target (see {@link stowAgent}). */
  readonly agent: http.Agent;
}

/** The longest answer kept: a store response lists every instance (with URLs), about 300 bytes each. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;
/** Read size of the spooled files: large enough that a file goes out in few writes. */
const READ_BLOCK_BYTES = 1024 * 1024;

/**
 * The STOW-RS endpoint of a DICOMweb base URL: `<url>/studies` (trailing slashes dropped), or the URL
 * itself when it already ends in `/studies`. Query and fragment stay as given.
 */
export function stowEndpoint(base: string): URL {
  const url = new URL(base);
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith('/studies') ? path : `${path}/studies`;
  return url;
}

/**
 * A keep-alive agent for one target's requests (destroy it when the delivery ends). For https, `ca` (PEM)
 * is trusted besides Node's default CAs (the bundled ones and NODE_EXTRA_CA_CERTS).
 */
export function stowAgent(endpoint: URL, ca?: string): http.Agent {
  const options = { keepAlive: true, maxSockets: 1 };
  if (endpoint.protocol !== 'https:') return new http.Agent(options);
  return new https.Agent(
    ca === undefined ? options : { ...options, ca: [...getCACertificates('default'), ca] },
  );
}

/**
 * POSTs `files` as one `multipart/related; type="application/dicom"` body (PS3.18 10.5) and resolves with
 * the server's answer, whatever its status (judge it with judgeStowAnswer). The body streams from the
 * spooled files, a block at a time, with a Content-Length computed from their sizes: no file is held in
 * memory, and servers and proxies that refuse chunked uploads take it. Rejects with a {@link StowError}
 * when no answer came (connection refused or reset, timeout, TLS), a {@link SpoolReadError} when a file
 * cannot be read, or the signal's reason when it aborts. A keep-alive connection the server had closed
 * in the meantime is retried once at once.
 */
export async function postStow(post: StowPost): Promise<StowAnswer> {
  try {
    return await postOnce(post);
  } catch (err) {
    if (!(err instanceof StowError) || err.opts.staleConnection !== true) throw err;
    return postOnce(post);
  }
}

function postOnce(post: StowPost): Promise<StowAnswer> {
  const boundary = `dicomflow-${randomUUID()}`;
  const partHead = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
  const crlf = Buffer.from('\r\n');
  const closing = Buffer.from(`--${boundary}--\r\n`);
  const length =
    post.files.reduce((sum, file) => sum + partHead.length + file.size + crlf.length, 0) + closing.length;
  const client = post.endpoint.protocol === 'https:' ? https : http;
  const where = `STOW-RS to ${post.endpoint.href}`;
  return new Promise<StowAnswer>((resolve, reject) => {
    let settled = false;
    let answered = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const req = client.request(post.endpoint, {
      method: 'POST',
      agent: post.agent,
      signal: post.signal,
      headers: {
        'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
        'Content-Length': String(length),
        Accept: 'application/dicom+json',
        'User-Agent': 'dicomflow-sender',
        ...(post.token === undefined ? {} : { Authorization: `Bearer ${post.token}` }),
      },
    });
    req.setTimeout(post.timeoutMs, () => {
      req.destroy(
        new StowError(`${where}: no traffic for ${post.timeoutMs} ms`, { transient: true, code: 'timeout' }),
      );
    });
    // A file that cannot be read ends the request; that, not the hang-up it causes, is the failure.
    let spoolFailure: SpoolReadError | undefined;
    req.on('error', (err) => {
      // A server may answer before it read the whole body (a 401, say) and close: its answer decides.
      if (answered) return;
      fail(spoolFailure ?? connectionFailure(err, where, req.reusedSocket));
    });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (chunk: Buffer) => {
        if (kept >= MAX_ANSWER_BYTES) return;
        chunks.push(chunk);
        kept += chunk.length;
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        resolve({
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? '',
          body: Buffer.concat(chunks).toString('utf8'),
          ...(res.headers.location === undefined ? {} : { location: res.headers.location }),
        });
      });
      res.on('error', (err) => {
        fail(connectionFailure(err, where, false));
      });
      res.on('close', () => {
        if (!res.complete)
          fail(
            new StowError(`${where}: the connection closed before the answer ended`, {
              transient: true,
              code: 'aborted',
            }),
          );
      });
    });
    // Byte mode: at most a read block waits ahead of the socket (object mode would hold 16 blocks).
    const body = Readable.from(multipartBody(post.files, partHead, crlf, closing), {
      objectMode: false,
      highWaterMark: READ_BLOCK_BYTES,
    });
    body.once('error', (err) => {
      if (err instanceof SpoolReadError) spoolFailure = err;
    });
    // Failures surface as the request's 'error' (pipeline destroys it with them).
    pipeline(body, req).catch(() => undefined);
  });
}

async function* multipartBody(
  files: readonly StowFile[],
  partHead: Buffer,
  crlf: Buffer,
  closing: Buffer,
): AsyncGenerator<Buffer> {
  for (const file of files) {
    yield partHead;
    let read = 0;
    try {
      const stream = createReadStream(file.path, { highWaterMark: READ_BLOCK_BYTES });
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        read += chunk.length;
        // More bytes than announced would corrupt the request: stop before sending them.
        if (read > file.size) break;
        yield chunk;
      }
    } catch (err) {
      throw new SpoolReadError(`cannot read ${file.path}: ${(err as Error).message}`, { cause: err });
    }
    if (read !== file.size)
      throw new SpoolReadError(`${file.path} changed size while it was sent (${read} of ${file.size} bytes)`);
    yield crlf;
  }
  yield closing;
}

/** A request that got no answer, as a StowError (transient unless retrying cannot help). */
function connectionFailure(err: Error, where: string, reusedSocket: boolean): Error {
  if (err instanceof StowError || err instanceof SpoolReadError || err.name === 'AbortError') return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'connect';
  const message = `${where}: ${err.message}`;
  if (CERTIFICATE_ERROR_CODES.has(code) || code.startsWith('ERR_TLS'))
    return new StowError(message, { transient: false, code, reason: 'rejected', cause: err });
  // A port that does not speak HTTP (the DICOM port, say): the url is wrong.
  if (code.startsWith('HPE_'))
    return new StowError(`${message} (is this an HTTP server?)`, {
      transient: false,
      code,
      reason: 'rejected',
      cause: err,
    });
  if (code.startsWith('ERR_'))
    return new StowError(message, { transient: false, code, reason: 'error', cause: err });
  return new StowError(message, {
    transient: true,
    code,
    staleConnection: reusedSocket && code === 'ECONNRESET',
    cause: err,
  });
}

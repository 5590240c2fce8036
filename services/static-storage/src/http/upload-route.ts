import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { HttpError, PermanentError } from '@dicomflow/runtime';
import { parseStaticName, tarFileName } from '../static-name.js';
import { receiveToTempFile, tooLarge, type ReceivedUpload } from '../store/temp-upload.js';
import { tarProblem } from '../store/tar-check.js';
import { storageFailure } from './http-error.js';
import { itemBody, type RouteContext } from './route-context.js';
import { ErrorBody, NameParams, UploadBody, UploadHeaders } from './schemas.js';
import { requireUploadToken } from './upload-token.js';

/**
 * PUT /static/<name> (token-protected): the body, a tar of at most STATIC_MAX_UPLOAD_BYTES (413 past it), is
 * streamed to a temporary file while
 * it is hashed, checked, then stored as `<name>.tar` with its sha256. 201 when new, 200 when it replaced
 * an earlier version. Names the static folder holds are refused (409): the folder is their source.
 */
export function registerUploadRoute(app: FastifyInstance, context: RouteContext): void {
  // In a scope of its own: every body, whatever its content type, reaches the handler as the raw stream
  // (no size limit, nothing buffered), while the other routes keep fastify's parsers.
  void app.register((scope, _options, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, parsed) => {
      parsed(null, payload);
    });
    scope.put<{ Params: NameParams; Headers: UploadHeaders; Reply: UploadBody }>(
      '/static/*',
      {
        onRequest: requireUploadToken(context.uploadToken),
        schema: {
          params: NameParams,
          headers: UploadHeaders,
          response: { 200: UploadBody, 201: UploadBody, '4xx': ErrorBody, '5xx': ErrorBody },
        },
      },
      async (request, reply) => {
        const name = parseStaticName(request.params['*']);
        const expected = expectedSha256(request.headers['x-sha256']);
        await refuseFolderName(context, name);
        if (!isStream(request.body))
          throw new PermanentError('the upload has no body: send the tar as the request body');
        const declared = Number(request.headers['content-length'] ?? Number.NaN);
        // Refused before a byte is read when the length says so; else counted while it streams in.
        if (declared > context.maxUploadBytes) throw tooLarge(context.maxUploadBytes);
        const received = await receiveToTempFile(
          request.body,
          context.tempDirectory,
          context.maxUploadBytes,
        ).catch((err: unknown) => {
          // The rest of the body is never read: the connection closes after the answer.
          if (err instanceof HttpError && err.statusCode === 413) void reply.header('connection', 'close');
          throw err;
        });
        let stored: UploadBody;
        try {
          stored = await storeReceived(context, name, received, expected);
        } finally {
          // Before the answer: a client that got it finds no trace of the upload on disk.
          await received.discard();
        }
        return reply.code(stored.replaced ? 200 : 201).send(stored);
      },
    );
    done();
  });
}

/** Checks a received upload and puts it into the bucket; what the answer says about it. */
async function storeReceived(
  context: RouteContext,
  name: string,
  received: ReceivedUpload,
  expected: string | undefined,
): Promise<UploadBody> {
  if (received.size === 0) throw new PermanentError('the upload is empty: send the tar as the request body');
  if (expected !== undefined && expected !== received.sha256) {
    throw new PermanentError(
      `the body's sha256 is ${received.sha256}, X-Sha256 said ${expected}: nothing was stored`,
    );
  }
  const problem = await tarProblem(received.path);
  if (problem !== undefined)
    throw new PermanentError(`${tarFileName(name)} is ${problem}: nothing was stored`);
  const fail = (err: unknown): never => {
    throw storageFailure(err, name);
  };
  const replaced = (await context.store.get(name).catch(fail)) !== undefined;
  await context.store
    .put(name, createReadStream(received.path), received.size, received.sha256, 'upload')
    .catch(fail);
  context.metrics.stored.inc({ source: 'http' });
  context.metrics.storedBytes.inc({ source: 'http' }, received.size);
  context.logger.info(
    { name, size: received.size, sha256: received.sha256, replaced },
    'static content uploaded',
  );
  const stored = await context.store.get(name).catch(fail);
  if (!stored) throw new HttpError(503, `"${name}" was removed right after its upload`);
  return { ...itemBody(stored), replaced };
}

/** The folder owns the names of its files: a change over HTTP would be undone by the next sync. */
export async function refuseFolderName(context: RouteContext, name: string): Promise<void> {
  if (await context.sync.holds(name)) {
    throw new HttpError(
      409,
      `"${name}" comes from the static folder (${tarFileName(name)} there): change or remove that file instead`,
    );
  }
}

function expectedSha256(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = header.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(value))
    throw new PermanentError('X-Sha256 must be 64 hex digits (the SHA-256 of the body)');
  return value;
}

function isStream(body: unknown): body is Readable {
  return typeof body === 'object' && body !== null && typeof (body as Readable).pipe === 'function';
}

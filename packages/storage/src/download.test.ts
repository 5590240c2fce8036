import { createServer, type Server } from 'node:http';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDownload } from './download.js';
import { StorageError } from './storage-error.js';

const context = { operation: 'getStream', bucket: 'b', key: 'k.tar' };

/** A stand-in S3 answering each path with a fixed status and body (what a proxy or S3 may send). */
const answers: Record<string, { status: number; body: string; length?: number }> = {
  '/ok': { status: 200, body: 'hello' },
  '/missing': {
    status: 404,
    body: '<?xml version="1.0"?><Error><Code>NoSuchKey</Code><Message>The key does not exist</Message></Error>',
  },
  '/bare-404': { status: 404, body: '' },
  '/denied': {
    status: 403,
    body: '<Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>',
  },
  '/busy': { status: 503, body: '<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>' },
  '/proxy-error': { status: 502, body: '<html>Bad Gateway</html>' },
  // Announces more bytes than it sends, then closes: a body cut short.
  '/short': { status: 200, body: 'only part', length: 1000 },
};

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    const answer = answers[request.url ?? ''] ?? { status: 500, body: '' };
    response.writeHead(answer.status, { 'content-length': String(answer.length ?? answer.body.length) });
    if (answer.length !== undefined) {
      response.write(answer.body);
      // Later, so the client has the headers (and the open stream) before the connection breaks.
      setTimeout(() => response.socket?.destroy(), 100);
      return;
    }
    response.end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  base = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function refusal(path: string): Promise<StorageError> {
  const err: unknown = await openDownload(`${base}${path}`, context).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

describe('openDownload', () => {
  it('streams the body of a 200', async () => {
    expect((await buffer(await openDownload(`${base}/ok`, context))).toString()).toBe('hello');
  });

  it('classifies refusals by their S3 code, else by their status', async () => {
    expect(await refusal('/missing')).toMatchObject({
      kind: 'gone',
      code: 'NoSuchKey',
      message: 'storage getStream b/k.tar failed: The key does not exist',
    });
    expect(await refusal('/bare-404')).toMatchObject({ kind: 'gone', code: 'NotFound' });
    expect(await refusal('/denied')).toMatchObject({ kind: 'permanent', code: 'AccessDenied' });
    expect(await refusal('/busy')).toMatchObject({ kind: 'transient', code: 'SlowDown' });
    expect(await refusal('/proxy-error')).toMatchObject({ kind: 'transient', code: 'HTTP502' });
  });

  it('fails as transient, with a code, when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const address = closed.address();
    await new Promise((resolve) => closed.close(resolve));
    if (address === null || typeof address === 'string') throw new Error('no port');
    const err = await openDownload(`http://127.0.0.1:${address.port}/x`, context).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'transient', code: 'ECONNREFUSED', operation: 'getStream' });
  });

  it('fails with a transient StorageError when the body ends short', async () => {
    // Whether the break is seen while opening or while reading depends on timing: either way it must be a
    // transient StorageError, never a short body read as whole.
    const err = await openDownload(`${base}/short`, context)
      .then((stream) => buffer(stream))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ kind: 'transient', bucket: 'b', key: 'k.tar' });
    expect((err as StorageError).code).toEqual(expect.any(String));
  });
});

import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, makeTestCertificates, type TestCertificates } from '@dicomflow/test-helpers';
import { postStow, stowAgent, stowEndpoint, type StowFile, type StowPost } from './stow-client.js';
import { SpoolReadError, StowError } from './stow-error.js';

/** What the test server saw of one request. */
interface Seen {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** A local HTTP server answering each request with `answer` (after reading the body, unless told not to). */
async function startServer(
  answer: (seen: Seen, res: http.ServerResponse) => void,
  opts: { readBody?: boolean } = {},
): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    if (opts.readBody === false) {
      answer({ headers: req.headers, body: Buffer.alloc(0) }, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = { headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(request);
      answer(request, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/dicom-web`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** The parts of a multipart body, split at `boundary` (no part here contains it). */
function partsOf(body: Buffer, boundary: string): { head: string; data: Buffer }[] {
  const text = body.toString('latin1');
  const pieces = text.split(`--${boundary}`);
  expect(pieces[0]).toBe('');
  expect(pieces.at(-1)).toBe('--\r\n');
  return pieces.slice(1, -1).map((piece) => {
    const split = piece.indexOf('\r\n\r\n');
    expect(piece.endsWith('\r\n')).toBe(true);
    return {
      head: piece.slice(0, split),
      data: Buffer.from(piece.slice(split + 4, -2), 'latin1'),
    };
  });
}

describe('postStow', () => {
  let dir = '';
  let files: StowFile[] = [];
  let contents: Buffer[] = [];
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stow-client-'));
    // Sizes around the read block (1 MiB), so a file goes out in several chunks.
    contents = [randomBytes(300), randomBytes(2 * 1024 * 1024 + 17), randomBytes(1)];
    files = await Promise.all(
      contents.map(async (data, n) => {
        const path = join(dir, `${n}.dcm`);
        await writeFile(path, data);
        return { path, size: data.length };
      }),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  const post = (url: string, extra: Partial<StowPost> = {}): StowPost => {
    const endpoint = stowEndpoint(url);
    const agent = stowAgent(endpoint);
    stops.push(() => {
      agent.destroy();
      return Promise.resolve();
    });
    return { endpoint, files, timeoutMs: 10_000, signal: new AbortController().signal, agent, ...extra };
  };

  it('posts every file byte for byte as multipart/related application/dicom, with the token', async () => {
    const server = await startServer((_seen, res) => {
      res.writeHead(200, { 'Content-Type': 'application/dicom+json' }).end('{"00081199":{"vr":"SQ"}}');
    });
    stops.push(server.close);
    const answer = await postStow(post(server.url, { token: 'abc.DEF-123' }));

    expect(answer).toEqual({ status: 200, statusText: 'OK', body: '{"00081199":{"vr":"SQ"}}' });
    const [request] = server.seen;
    const type = String(request?.headers['content-type']);
    expect(type).toMatch(/^multipart\/related; type="application\/dicom"; boundary=dicomflow-[0-9a-f-]{36}$/);
    expect(request?.headers.accept).toBe('application/dicom+json');
    expect(request?.headers.authorization).toBe('Bearer abc.DEF-123');
    expect(Number(request?.headers['content-length'])).toBe(request?.body.length);
    const parts = partsOf(request?.body ?? Buffer.alloc(0), type.split('boundary=')[1] ?? '');
    expect(parts.map((p) => p.head)).toEqual(contents.map(() => '\r\nContent-Type: application/dicom'));
    expect(parts.map((p) => p.data.equals(contents[parts.indexOf(p)] ?? Buffer.alloc(0)))).toEqual([
      true,
      true,
      true,
    ]);
  });

  it('sends no Authorization without a token and posts to <url>/studies', async () => {
    let path = '';
    const server = http.createServer((req, res) => {
      path = req.url ?? '';
      expect(req.headers.authorization).toBeUndefined();
      req.resume();
      req.on('end', () => res.writeHead(202).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    stops.push(() => new Promise((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    const answer = await postStow(post(`http://127.0.0.1:${port}/root/dicom-web/?x=1`));
    expect(answer.status).toBe(202);
    expect(path).toBe('/root/dicom-web/studies?x=1');
  });

  it('takes an answer the server gives before reading the body', async () => {
    const server = await startServer(
      (_seen, res) => {
        res.writeHead(401, 'Unauthorized').end();
      },
      { readBody: false },
    );
    stops.push(server.close);
    expect(await postStow(post(server.url))).toMatchObject({ status: 401, statusText: 'Unauthorized' });
  });

  it('fails transiently when the connection is refused', async () => {
    const port = await freePort();
    const error = await postStow(post(`http://127.0.0.1:${port}/dicom-web`)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StowError);
    expect(error).toMatchObject({ transient: true, code: 'ECONNREFUSED' });
    expect((error as Error).message).toMatch(
      new RegExp(`^STOW-RS to http://127\\.0\\.0\\.1:${port}/dicom-web/studies: connect ECONNREFUSED`),
    );
  });

  it('fails transiently when the server never answers (timeout)', async () => {
    const server = await startServer(() => undefined);
    stops.push(server.close);
    const error = await postStow(post(server.url, { timeoutMs: 300 })).catch((err: unknown) => err);
    expect(error).toMatchObject({ name: 'StowError', transient: true, code: 'timeout' });
  });

  it('fails for good when the port does not speak HTTP', async () => {
    const sockets = new Set<Socket>();
    const tcp: Server = createTcpServer((socket) => {
      sockets.add(socket);
      // An A-ASSOCIATE-RJ, as a DICOM port would answer anything.
      socket.end(Buffer.from([0x03, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01, 0x01, 0x01]));
    });
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    stops.push(
      () =>
        new Promise((resolve) => {
          for (const socket of sockets) socket.destroy();
          tcp.close(() => {
            resolve();
          });
        }),
    );
    const { port } = tcp.address() as AddressInfo;
    const error = await postStow(post(`http://127.0.0.1:${port}/dicom-web`)).catch((err: unknown) => err);
    expect(error).toMatchObject({ name: 'StowError', transient: false });
    expect((error as StowError).code).toMatch(/^HPE_/);
    expect((error as Error).message).toMatch(/is this an HTTP server\?/);
  });

  it('fails with a local error when a spooled file is gone', async () => {
    const server = await startServer((_seen, res) => res.writeHead(200).end());
    stops.push(server.close);
    const error = await postStow(
      post(server.url, { files: [{ path: join(dir, 'missing.dcm'), size: 10 }] }),
    ).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(SpoolReadError);
  });
});

describe('postStow over https', () => {
  let dir = '';
  let certs: TestCertificates | undefined;
  let server: https.Server | undefined;
  let url = '';
  const agents: http.Agent[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stow-tls-'));
    certs = await makeTestCertificates();
    const [key, cert] = await Promise.all([
      readFile(certs.server.keyFile, 'utf8'),
      readFile(certs.server.certFile, 'utf8'),
    ]);
    const secure = https.createServer({ key, cert }, (req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end());
    });
    server = secure;
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(secure.address() as AddressInfo).port}/dicom-web`;
    await writeFile(join(dir, '1.dcm'), randomBytes(5000));
  }, 60_000);
  afterAll(async () => {
    for (const agent of agents) agent.destroy();
    await new Promise<void>((resolve) => {
      server?.closeAllConnections();
      server?.close(() => {
        resolve();
      });
    });
    await certs?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const post = async (caFile?: string): Promise<StowPost> => {
    const endpoint = stowEndpoint(url);
    const agent = stowAgent(endpoint, caFile === undefined ? undefined : await readFile(caFile, 'utf8'));
    agents.push(agent);
    const files = [{ path: join(dir, '1.dcm'), size: 5000 }];
    return { endpoint, files, timeoutMs: 10_000, signal: new AbortController().signal, agent };
  };

  it('posts to a server whose certificate the extra CA signed', async () => {
    expect(await postStow(await post(certs?.ca.certFile))).toMatchObject({ status: 200 });
  });

  it('fails for good on a certificate no trusted CA signed', async () => {
    for (const caFile of [undefined, certs?.otherCa.certFile]) {
      const error = await postStow(await post(caFile)).catch((err: unknown) => err);
      expect(error).toMatchObject({
        name: 'StowError',
        transient: false,
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      });
    }
  });
});

describe('stowEndpoint', () => {
  it.each([
    ['http://pacs/dicom-web', 'http://pacs/dicom-web/studies'],
    ['http://pacs/dicom-web///', 'http://pacs/dicom-web/studies'],
    ['https://pacs:8443', 'https://pacs:8443/studies'],
    ['https://pacs/dicom-web/studies', 'https://pacs/dicom-web/studies'],
    ['https://pacs/wado?tenant=a', 'https://pacs/wado/studies?tenant=a'],
  ])('%s -> %s', (base, endpoint) => {
    expect(stowEndpoint(base).href).toBe(endpoint);
  });
});

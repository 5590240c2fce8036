import { afterEach, describe, expect, it } from 'vitest';
import {
  createHttpServer,
  createLogger,
  createMetricsRegistry,
  GoneError,
  PermanentError,
  TransientError,
} from './index.js';
import type { HttpServer, HttpServerOptions, ReadinessCheck } from './index.js';

const logLines: string[] = [];
const logger = createLogger({
  service: 'http-test',
  level: 'debug',
  destination: { write: (chunk: string) => logLines.push(chunk) },
});

const servers: HttpServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(
  checks: readonly ReadinessCheck[],
  extra: Partial<HttpServerOptions> = {},
  addRoutes?: (server: HttpServer) => void,
): Promise<{ server: HttpServer; url: string }> {
  const server = createHttpServer({
    logger,
    port: 0,
    host: '127.0.0.1',
    checks,
    registry: createMetricsRegistry('http-test'),
    ...extra,
  });
  servers.push(server);
  addRoutes?.(server);
  const { port } = await server.listen();
  return { server, url: `http://127.0.0.1:${port}` };
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

describe('createHttpServer', () => {
  it('answers /healthz', async () => {
    const { url } = await start([]);
    expect(await getJson(`${url}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('is ready when every check passes, with details', async () => {
    const { url } = await start(
      [
        { name: 'broker', check: () => undefined },
        { name: 's3', check: async () => Promise.resolve() },
      ],
      { details: () => ({ openGroups: 3 }) },
    );
    expect(await getJson(`${url}/readyz`)).toEqual({
      status: 200,
      body: {
        status: 'ready',
        checks: { broker: { ok: true }, s3: { ok: true } },
        details: { openGroups: 3 },
      },
    });
  });

  it('is not ready when a check fails, and shows why', async () => {
    const { url } = await start([
      { name: 'broker', check: () => undefined },
      {
        name: 'db',
        check: () => {
          throw new Error('connection refused');
        },
      },
      { name: 's3', check: () => Promise.reject(new Error('bucket missing')) },
    ]);
    expect(await getJson(`${url}/readyz`)).toEqual({
      status: 503,
      body: {
        status: 'not ready',
        checks: {
          broker: { ok: true },
          db: { ok: false, error: 'connection refused' },
          s3: { ok: false, error: 'bucket missing' },
        },
        details: {},
      },
    });
  });

  it('fails a check that never settles once it times out', async () => {
    const { url } = await start(
      [
        { name: 'hangs', check: () => new Promise<void>(() => undefined) },
        { name: 'fine', check: () => undefined },
      ],
      { checkTimeoutMs: 50 },
    );
    const { status, body } = await getJson(`${url}/readyz`);
    expect(status).toBe(503);
    expect(body).toMatchObject({
      checks: { hangs: { ok: false, error: 'timed out after 50 ms' }, fine: { ok: true } },
    });
  });

  it('serves Prometheus metrics with the default metrics and the service label', async () => {
    const { url } = await start([]);
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toContain('dicomflow_process_cpu_user_seconds_total');
    expect(text).toContain('service="http-test"');
  });

  it('maps errors thrown by routes to status codes with { error } and no stack', async () => {
    const { url } = await start([], {}, ({ app }) => {
      app.get('/permanent', () => {
        throw new PermanentError('bad flow file');
      });
      app.get('/gone', () => {
        throw new GoneError('run deleted');
      });
      app.get('/transient', async () => Promise.reject(new TransientError('db down')));
      app.get('/plain', () => {
        throw new Error('boom');
      });
      app.post('/validated', { schema: { body: { type: 'object', required: ['name'] } } }, () => ({
        ok: true,
      }));
    });
    expect(await getJson(`${url}/permanent`)).toEqual({ status: 400, body: { error: 'bad flow file' } });
    expect(await getJson(`${url}/gone`)).toEqual({ status: 404, body: { error: 'run deleted' } });
    expect(await getJson(`${url}/transient`)).toEqual({ status: 500, body: { error: 'db down' } });
    expect(await getJson(`${url}/plain`)).toEqual({ status: 500, body: { error: 'boom' } });
    expect(await getJson(`${url}/nowhere`)).toEqual({ status: 404, body: { error: 'not found' } });

    const invalid = await fetch(`${url}/validated`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({}),
    });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({ error: expect.stringContaining('name') as unknown });

    const failures = logLines.filter((line) => line.includes('"request failed"'));
    expect(failures.some((line) => line.includes('"route":"/plain"'))).toBe(true);
  });

  it('can be closed twice', async () => {
    const { server, url } = await start([]);
    await server.close();
    await server.close();
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('keeps fastify request logs out of the service log', async () => {
    logLines.length = 0;
    const { url } = await start([]);
    await getJson(`${url}/healthz`);
    expect(logLines.some((line) => line.includes('incoming request'))).toBe(false);
    expect(logLines.some((line) => line.includes('http server listening'))).toBe(true);
  });
});

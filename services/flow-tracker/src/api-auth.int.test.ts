import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { loadConfig } from '@dicomflow/config';
import { createLogger } from '@dicomflow/runtime';
import { testEnvironment } from '@dicomflow/test-helpers';
import { createService, type FlowTrackerService } from './service.js';
import { newIsolation, testPool, TestPublisher, type Isolation } from './testing/tracker-harness.js';

const TOKEN = 'tracker-secret-4e1f9c0b7a';

/** A tracker in this process whose every log line (debug and up) the test keeps. */
async function startWithLogs(
  isolation: Isolation,
  token: string,
  lines: string[],
): Promise<{ service: FlowTrackerService; url: string; close(): Promise<void> }> {
  const confDir = await mkdtemp(join(tmpdir(), 'tracker-auth-conf-'));
  const config = loadConfig('flow-tracker', {
    confDir,
    env: {
      ...testEnvironment(),
      HTTP_PORT: '0',
      HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      RABBIT_EXCHANGE: isolation.exchange,
      RABBIT_QUEUE_PREFIX: isolation.queuePrefix,
      TRACKER_DB_SCHEMA: isolation.schema,
      TRACKER_API_TOKEN: token,
    },
  });
  const logger = createLogger({
    service: 'tracker-auth-test',
    level: 'debug',
    destination: { write: (line: string) => void lines.push(line) },
  });
  const service = createService(config, logger);
  await service.start();
  return {
    service,
    url: `http://127.0.0.1:${service.httpPort()}`,
    async close() {
      await service.close();
      await rm(confDir, { recursive: true, force: true });
    },
  };
}

describe('flow-tracker API: bearer token', () => {
  let pool: pg.Pool;
  let isolation: Isolation;
  let publisher: TestPublisher;

  beforeAll(async () => {
    pool = testPool();
    isolation = newIsolation();
    publisher = await TestPublisher.open(isolation);
  });

  afterAll(async () => {
    await publisher.cleanup(pool);
    await pool.end();
  });

  it('answers 401 without the token or with a wrong one, serves it with the token, keeps probes open', async () => {
    const lines: string[] = [];
    const tracker = await startWithLogs(isolation, TOKEN, lines);
    try {
      const get = (path: string, authorization?: string): Promise<Response> =>
        fetch(`${tracker.url}${path}`, authorization ? { headers: { authorization } } : {});
      for (const path of [
        '/runs',
        '/studies/1.2.3',
        '/instances/1.2.3',
        '/runs/7c4a3f8e-2a51-4c7e-9a3a-0b1c2d3e4f50',
      ]) {
        const none = await get(path);
        expect({ path, status: none.status }).toEqual({ path, status: 401 });
        expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
        expect(((await none.json()) as { error: string }).error).toMatch(/missing or wrong bearer token/);
        expect((await get(path, `Bearer ${TOKEN}x`)).status).toBe(401);
        expect((await get(path, TOKEN)).status).toBe(401); // not a Bearer header
      }
      const resend = await fetch(`${tracker.url}/runs/7c4a3f8e-2a51-4c7e-9a3a-0b1c2d3e4f50/resend`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' },
        body: '{}',
      });
      expect(resend.status).toBe(401);

      const runs = await get('/runs', `Bearer ${TOKEN}`);
      expect(runs.status).toBe(200);
      expect(await runs.json()).toBeTypeOf('object');
      expect((await get('/runs/7c4a3f8e-2a51-4c7e-9a3a-0b1c2d3e4f50', `bearer ${TOKEN}`)).status).toBe(404);

      for (const open of ['/healthz', '/readyz', '/metrics']) expect((await get(open)).status).toBe(200);
      expect(lines.length).toBeGreaterThan(3);
      expect(lines.filter((line) => line.includes(TOKEN))).toEqual([]);
    } finally {
      await tracker.close();
    }
  });

  it('is off (401 saying how to turn it on) when no token is configured', async () => {
    const lines: string[] = [];
    const tracker = await startWithLogs(isolation, '', lines);
    try {
      const response = await fetch(`${tracker.url}/runs`, { headers: { authorization: 'Bearer anything' } });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: string }).error).toMatch(/set TRACKER_API_TOKEN/);
      expect((await fetch(`${tracker.url}/readyz`)).status).toBe(200);
    } finally {
      await tracker.close();
    }
  });
});

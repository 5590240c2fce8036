// The process stack of `npm run stack` (scripts/stack-lib.mjs), run for real: services started from their
// builds against the tests' RabbitMQ and S3, each on a free port, then stopped with SIGTERM.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { testEnvironment } from '@dicomflow/test-helpers';
import { removeIsolatedStack } from '../../scripts/stack-cleanup.mjs';
import {
  REPO_ROOT,
  checkBuilt,
  listeningPort,
  prettyLogLine,
  serviceEnvironment,
  startStack,
} from '../../scripts/stack-lib.mjs';

const id = randomBytes(4).toString('hex');
const exchange = `stack-test-${id}`;
const prefix = `stack-test-${id}.`;
const buckets = ['incoming', 'runs', 'static'].map((purpose) => `test-stack-${purpose}-${id}`);
/** Servers, exchange, queue prefix and buckets of this test's own (removed by removeIsolatedStack). */
const isolated = {
  ...testEnvironment(),
  RABBIT_EXCHANGE: exchange,
  RABBIT_QUEUE_PREFIX: prefix,
  S3_BUCKET_INCOMING: buckets[0],
  S3_BUCKET_RUNS: buckets[1],
  S3_BUCKET_STATIC: buckets[2],
};
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stack-test-'));
});

afterAll(async () => {
  await removeIsolatedStack(isolated);
  await rm(work, { recursive: true, force: true });
});

describe('stack-lib', () => {
  it('prettifies pino lines into one short line and leaves other lines alone', () => {
    const line = JSON.stringify({
      level: 'info',
      time: '2026-01-02T03:04:05.678Z',
      service: 'storescp',
      msg: 'receipt published',
      receiptId: 'r1',
      instances: 3,
    });
    expect(prettyLogLine(line)).toBe('03:04:05 INFO  receipt published receiptId=r1 instances=3');
    expect(prettyLogLine('plain text')).toBe('plain text');
    // The reason survives whether the error was logged as an object or only as its text.
    const failed = { level: 'warn', time: '2026-01-02T03:04:05.678Z', msg: 'handler failed; retrying later' };
    expect(prettyLogLine(JSON.stringify({ ...failed, err: 'connect ECONNREFUSED 127.0.0.1:5432' }))).toBe(
      '03:04:05 WARN  handler failed; retrying later err=connect ECONNREFUSED 127.0.0.1:5432',
    );
    expect(prettyLogLine(JSON.stringify({ ...failed, err: { type: 'Error', message: 'boom' } }))).toBe(
      '03:04:05 WARN  handler failed; retrying later err=boom',
    );
    expect(listeningPort('{"msg":"http server listening","port":4321}')).toBe(4321);
    expect(listeningPort('{"msg":"other","port":4321}')).toBeUndefined();
  });

  it('points every default container path of the configuration at a local folder', async () => {
    const defaults = parse(
      await readFile(join(REPO_ROOT, 'conf.d', '00_default_config.yaml'), 'utf8'),
    ) as Record<string, unknown>;
    const containerPaths = Object.entries(defaults).filter(
      ([, value]) => typeof value === 'string' && /^\/(opt|var)\//.test(value),
    );
    expect(containerPaths.length).toBeGreaterThan(0);
    const env = serviceEnvironment('sender', { env: {}, dataDir: join(work, 'data') });
    for (const [key] of containerPaths) {
      expect({ key, local: env[key]?.startsWith(REPO_ROOT) || env[key]?.startsWith(work) }).toEqual({
        key,
        local: true,
      });
    }
    expect(env.CONF_DIR).toBe(join(REPO_ROOT, 'conf.d'));
    // The consumer stages jobs in a local work folder, except against a remote engine.
    expect(env.CONSUMER_WORK_DIR).toBe(join(work, 'data', 'work'));
    const remote = serviceEnvironment('consumer', {
      env: { DOCKER_HOST: 'tcp://gpu-1:2375' },
      dataDir: work,
    });
    expect(remote.CONSUMER_WORK_DIR).toBe('');
  });

  it('names the services that are not built, and unknown ones', () => {
    const root = join(work, 'empty-repo');
    expect(() => checkBuilt(['storescp', 'sender'], root)).toThrow(
      /not built: services\/storescp\/dist\/main\.js, services\/sender\/dist\/main\.js; run `npm run build`/,
    );
    expect(() => checkBuilt(['nope'])).toThrow(/unknown service\(s\): nope/);
  });

  it('starts services from their builds, reports their ports, and stops them with SIGTERM', async () => {
    const lines: string[] = [];
    const stack = await startStack({
      services: ['static-storage', 'fingerprinter'],
      httpPorts: { 'static-storage': 0, fingerprinter: 0 },
      dataDir: join(work, 'data'),
      env: {
        ...process.env,
        ...isolated,
        STATIC_DIRECTORY: join(work, 'static'),
        HTTP_HOST: '127.0.0.1',
      },
      waitFor: 'readyz',
      onLine: (service, line) => lines.push(`[${service}] ${line}`),
    });
    let stopped = false;
    try {
      expect(Object.keys(stack.urls).sort()).toEqual(['fingerprinter', 'static-storage']);
      expect(lines).toContainEqual(expect.stringMatching(/^\[buckets\] buckets ready/));
      const listing = await fetch(`${stack.urls['static-storage'] ?? ''}/static`);
      expect([listing.status, await listing.json()]).toEqual([200, { items: [] }]);
      const flows = await fetch(`${stack.urls.fingerprinter ?? ''}/readyz`);
      expect(flows.status).toBe(200);

      expect(await stack.stop()).toEqual({ 'static-storage': 0, fingerprinter: 0 });
      stopped = true;
      expect(lines).toContainEqual(expect.stringContaining('"reason":"SIGTERM"'));
      await expect(fetch(`${stack.urls['static-storage'] ?? ''}/healthz`)).rejects.toThrow();
    } finally {
      if (!stopped) await stack.stop();
    }
  });
});

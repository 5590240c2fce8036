import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateMessage, type MessageOf, type SchemaRoutingKey } from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { freePort } from '@dicomflow/test-helpers';
import type { AckStore } from '../db/ack-store.js';
import { flowFinished } from '../testing/sender-harness.js';
import { deliverToTarget, type TargetRetry } from './deliver.js';
import { OutputFeed } from './output-feed.js';
import { RetryNotices } from './retry-notices.js';

/** A logger whose JSON lines land in `lines`. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ service: 'deliver-test', level: 'info', destination }), lines };
}

/** Nothing acknowledged before, nothing stored (the target never answers). */
const noAcks = {
  acked: () => Promise.resolve(new Set<string>()),
  record: () => Promise.resolve(),
} as unknown as AckStore;

/** STOW-RS settings for tests that send to a DICOM node (unused there). */
const NO_STOW = { tokenDir: '/nonexistent', caFile: '', batchInstances: 10, batchBytes: 1 << 20 };

/** One instance that is never read: the connection fails first. */
function oneInstanceFeed(path = '/nonexistent/1.dcm'): OutputFeed {
  const feed = new OutputFeed();
  feed.add({
    member: 'out/1.dcm',
    file: {
      path,
      size: 1000,
      datasetOffset: 132,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUid: '1.2.3.4',
      transferSyntaxUid: '1.2.840.10008.1.2.1',
    },
  });
  feed.end();
  return feed;
}

describe('deliverToTarget retries', () => {
  it('logs why it retries (message and code) and reports each retry with its next attempt', async () => {
    const port = await freePort();
    const { logger, lines } = capturingLogger();
    const retries: TargetRetry[] = [];
    const target = { kind: 'destination' as const, host: '127.0.0.1', port, aeTitle: 'DOWN' };
    const outcome = await deliverToTarget('run-1', target, oneInstanceFeed(), {
      acks: noAcks,
      callingAeTitle: 'DICOMFLOW',
      retry: { maxAttempts: 3, initialMs: 1, maxMs: 2, timeoutMs: 5000 },
      scratchDir: '/nonexistent',
      stow: NO_STOW,
      logger,
      signal: new AbortController().signal,
      onRetry: (retry) => retries.push(retry),
    });

    expect(outcome).toMatchObject({ sent: 0, failed: 1, attempts: 3, reason: 'unreachable' });
    expect(outcome.message).toMatch(/ECONNREFUSED/);
    expect(retries.map((r) => [r.attempt, r.maxAttempts, r.error.code])).toEqual([
      [1, 3, 'ECONNREFUSED'],
      [2, 3, 'ECONNREFUSED'],
    ]);
    expect(retries[0]?.target).toEqual(target);
    expect(retries[0]?.error.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED`));

    const retrying = lines.filter((line) => line.msg === 'retrying target');
    expect(retrying).toHaveLength(2);
    expect(retrying[0]).toMatchObject({
      level: 'warn',
      target: `destination|127.0.0.1|${port}|DOWN`,
      attempt: 1,
      maxAttempts: 3,
      code: 'ECONNREFUSED',
      err: expect.stringMatching(/connect ECONNREFUSED/) as unknown,
      nextAttemptAt: retries[0]?.nextAttemptAt.toISOString(),
    });
    expect(typeof retrying[0]?.delayMs).toBe('number');
  });
});

describe('deliverToTarget retries a DICOMweb server', () => {
  let dir = '';
  let file = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deliver-retry-'));
    // The request body starts streaming while the connection opens: the file has to exist.
    file = join(dir, '1.dcm');
    await writeFile(file, Buffer.alloc(1000));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('retries a refused connection like a DICOM node, with the system error as code', async () => {
    const port = await freePort();
    const { logger, lines } = capturingLogger();
    const retries: TargetRetry[] = [];
    const target = { kind: 'destination' as const, url: `http://127.0.0.1:${port}/dicom-web` };
    const outcome = await deliverToTarget('run-1', target, oneInstanceFeed(file), {
      acks: noAcks,
      callingAeTitle: 'DICOMFLOW',
      retry: { maxAttempts: 3, initialMs: 1, maxMs: 2, timeoutMs: 5000 },
      scratchDir: '/nonexistent',
      stow: NO_STOW,
      logger,
      signal: new AbortController().signal,
      onRetry: (retry) => retries.push(retry),
    });

    expect(outcome).toMatchObject({ target, sent: 0, failed: 1, attempts: 3, reason: 'unreachable' });
    expect(retries.map((r) => [r.attempt, r.error.code])).toEqual([
      [1, 'ECONNREFUSED'],
      [2, 'ECONNREFUSED'],
    ]);
    expect(retries[0]?.error.message).toMatch(
      new RegExp(`STOW-RS to http://127\\.0\\.0\\.1:${port}/dicom-web/studies: .*ECONNREFUSED`),
    );
    expect(lines.filter((line) => line.msg === 'retrying target')[0]).toMatchObject({
      target: `destination|http://127.0.0.1:${port}/dicom-web`,
      code: 'ECONNREFUSED',
    });
  });

  it('fails at once, without a request, when its token file is missing', async () => {
    const retries: TargetRetry[] = [];
    const target = { kind: 'destination' as const, url: 'http://127.0.0.1:9/dicom-web' };
    const outcome = await deliverToTarget('run-1', target, oneInstanceFeed(), {
      acks: noAcks,
      callingAeTitle: 'DICOMFLOW',
      retry: { maxAttempts: 3, initialMs: 1, maxMs: 2, timeoutMs: 5000 },
      scratchDir: '/nonexistent',
      stow: NO_STOW,
      credentials: { token_file: 'pacs-token' },
      logger: capturingLogger().logger,
      signal: new AbortController().signal,
      onRetry: (retry) => retries.push(retry),
    });
    expect(outcome).toMatchObject({ sent: 0, failed: 1, attempts: 1, reason: 'error' });
    expect(outcome.message).toBe(
      'token_file pacs-token (in SENDER_TOKEN_DIR /nonexistent): cannot be read (ENOENT)',
    );
    expect(retries).toEqual([]);
  });
});

describe('RetryNotices', () => {
  const finished = flowFinished({ output: { bucket: 'runs', key: 'k' } });
  const retry: TargetRetry = {
    target: { kind: 'destination', host: 'pacs.example', port: 104, aeTitle: 'PACS' },
    attempt: 2,
    maxAttempts: 10,
    nextAttemptAt: new Date('2026-01-05T10:00:14.000Z'),
    error: { code: 'ECONNREFUSED', message: 'x'.repeat(5000) },
  };

  it('publishes a valid send.retrying per retry, correlated to the run', async () => {
    const published: { key: string; body: unknown; correlationId: string | undefined }[] = [];
    const broker = {
      publish<K extends SchemaRoutingKey>(key: K, body: MessageOf<K>, opts?: { correlationId?: string }) {
        published.push({ key, body, correlationId: opts?.correlationId });
        return Promise.resolve();
      },
    };
    const notices = new RetryNotices(finished, broker, capturingLogger().logger);
    notices.notify(retry);
    await notices.settled();

    expect(published).toHaveLength(1);
    const [notice] = published;
    expect(notice?.key).toBe('send.retrying');
    expect(notice?.correlationId).toBe(finished.runId);
    const valid = validateMessage('send.retrying', notice?.body);
    expect(valid.ok).toBe(true);
    expect(notice?.body).toMatchObject({
      runId: finished.runId,
      target: retry.target,
      attempt: 2,
      maxAttempts: 10,
      nextAttemptAt: '2026-01-05T10:00:14.000Z',
      error: { code: 'ECONNREFUSED' },
    });
  });

  it('logs and drops a notice it cannot publish, without failing', async () => {
    const { logger, lines } = capturingLogger();
    const broker = { publish: () => Promise.reject(new Error('broker away')) };
    const notices = new RetryNotices(finished, broker, logger);
    notices.notify(retry);
    await expect(notices.settled()).resolves.toBeUndefined();
    expect(lines.find((line) => line.msg === 'cannot publish send.retrying')).toMatchObject({
      level: 'warn',
      err: 'broker away',
    });
  });
});

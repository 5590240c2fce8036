// End to end: a destination that is down while a run is sending. The tracker says which destination the
// run waits for, the sender's last error and its next attempt; once a storescp listens there, the run is
// delivered and waits for nothing.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  buildTestModelImage,
  COPY_MODEL,
  freePort,
  generateCtSeries,
  nodelayShimPath,
  startDcmtkStorescp,
  storescu,
  waitFor,
  type RunningProcess,
} from '@dicomflow/test-helpers';
import {
  AE_TITLE,
  isDone,
  startE2eStack,
  type E2eStack,
  type TrackedRunDetail,
  E2E_TEST_TIMEOUT_MS,
} from './support/e2e-stack.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

/** `GET /runs/:id` with the retries of its delivery targets. */
interface RunWithRetries extends TrackedRunDetail {
  readonly sendRetries: {
    destination: string;
    kind: string;
    attempt: number;
    maxAttempts: number;
    error: { code: string; message: string };
    retryingAt: string;
    nextAttemptAt: string;
  }[];
}

let stack: E2eStack;
let work: string;
let shim: string;
let copyImage: string;
let late: RunningProcess | undefined;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-send-retry-'));
  shim = await nodelayShimPath(work);
  copyImage = await buildTestModelImage(COPY_MODEL);
  // Many quick retries: the destination comes up while the sender still tries, however long that takes.
  stack = await startE2eStack({
    env: {
      SEND_MAX_ATTEMPTS: '1000',
      SEND_RETRY_INITIAL_MS: '200',
      SEND_RETRY_MAX_MS: '1000',
      SEND_TIMEOUT_MS: '5000',
    },
  });
}, 240_000);

afterAll(async () => {
  await late?.stop();
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

describe('a destination that is down while sending', () => {
  it('shows waitingFor with the destination, last error and next attempt, then null once delivered', async () => {
    const port = await freePort();
    await stack.writeFlow('late.yaml', {
      name: 'late',
      triggers: [{ PatientID: '^E2E-LATE$' }],
      models: [{ docker_kwargs: { image: copyImage } }],
      destinations: [{ host: '127.0.0.1', port, ae_title: 'LATE' }],
    });
    const files = await generateCtSeries(join(work, 'study'), 1, {
      patientId: 'E2E-LATE',
      rows: 32,
      columns: 32,
    });
    const sent = await storescu({
      port: stack.aePort,
      calledAe: AE_TITLE,
      files,
      env: { ...process.env, LD_PRELOAD: shim },
    });
    expect(sent.code, sent.stderr).toBe(0);

    let runId = '';
    await waitFor(async () => {
      runId = (await stack.runs('late'))[0]?.id ?? '';
      return runId !== '';
    }, 'the run of the late flow');
    let waiting: RunWithRetries | undefined;
    await waitFor(
      async () => {
        const run = (await stack.run(runId)) as RunWithRetries;
        if (isDone(run))
          throw new Error(`the run ended while its destination was down: ${JSON.stringify(run)}`);
        // Before sending, waitingFor may name the queued model job instead.
        waiting = run.status === 3 && run.waitingFor !== null ? run : undefined;
        return waiting !== undefined;
      },
      'the tracker to show what the sending run waits for',
      120_000,
    );
    expect(waiting?.status).toBe(3);
    const [retry] = waiting?.sendRetries ?? [];
    expect(retry).toMatchObject({
      destination: `LATE@127.0.0.1:${port}`,
      kind: 'destination',
      maxAttempts: 1000,
      error: { code: 'ECONNREFUSED', message: expect.stringContaining('ECONNREFUSED') as unknown },
    });
    const nextAttemptAt = new Date(retry?.nextAttemptAt ?? '');
    expect(nextAttemptAt.getTime()).toBeGreaterThanOrEqual(new Date(retry?.retryingAt ?? '').getTime());
    expect(waiting?.waitingFor).toBe(
      `delivery to LATE@127.0.0.1:${port} is retried: attempt ${retry?.attempt} of 1000 failed ` +
        `(ECONNREFUSED: ${retry?.error.message}); next attempt at ${nextAttemptAt.toISOString()}`,
    );

    const received = join(work, 'received');
    late = await startDcmtkStorescp({ port, outDir: received, aeTitle: 'LATE' });
    const [done] = await stack.waitForRuns('late', 1, isDone);
    expect(done?.statusName).toBe('sent');
    const delivered = (await stack.run(runId)) as RunWithRetries;
    expect(delivered.waitingFor).toBeNull();
    // The last retry stays on record after the delivery.
    expect(delivered.sendRetries.map((r) => r.destination)).toEqual([`LATE@127.0.0.1:${port}`]);
    expect(await readdir(received)).toHaveLength(1);
  });
});

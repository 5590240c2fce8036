import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@dicomflow/config';
import type { Pool } from '@dicomflow/database';
import { createJanitorCounter, createLogger, type JanitorCounter } from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import {
  beginIncompleteUpload,
  removeBucketAndObjects,
  testStorageConfig,
  uniqueBucketName,
} from '@dicomflow/storage/testing';
import { testEnvironment } from '@dicomflow/test-helpers';
import { migrate } from './db/migrations.js';
import { createPool } from './db/pool.js';
import { runJanitorOnce, type SchedulerJanitorDeps } from './janitor.js';

/** The ages the janitor runs with: seconds, as the issue asks. */
const AGE_SECONDS = 2;
const logger = createLogger({ service: 'scheduler-janitor-test', level: 'silent' });
const s3 = testStorageConfig();
const storage = createStorage(s3);
const schema = `sched_janitor_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
const buckets = { incoming: uniqueBucketName('jan-incoming'), runs: uniqueBucketName('jan-runs') };
let pool: Pool;
let counter: JanitorCounter;

type Status = 'running' | 'finished' | 'failed';

/** A run row as the scheduler keeps it; `endedAgo` sets its last change that many seconds back. */
async function insertRun(
  status: Status,
  opts: { receiptId?: string; endedAgo?: number } = {},
): Promise<string> {
  const runId = randomUUID();
  await pool.query(
    `INSERT INTO "${schema}".runs (run_id, receipt_id, matched, step_count, status, updated_at)
     VALUES ($1, $2, '{}', 1, $3, now() - make_interval(secs => $4))`,
    [runId, opts.receiptId ?? randomUUID(), status, opts.endedAgo ?? 0],
  );
  return runId;
}

async function putReceipt(receiptId: string): Promise<void> {
  await storage.putBuffer(buckets.incoming, `${receiptId}.tar`, 'tar');
  await storage.putBuffer(buckets.incoming, `${receiptId}.index.jsonl`, '{}\n');
}

async function putOutputs(runId: string): Promise<void> {
  await storage.putBuffer(buckets.runs, `${runId}/0/output.tar`, 'out');
  await storage.putBuffer(buckets.runs, `${runId}/0/outcome.json`, '{}');
}

async function keys(bucket: string, prefix = ''): Promise<string[]> {
  return (await storage.list(bucket, prefix)).map((o) => o.key).sort();
}

async function runIds(): Promise<Set<string>> {
  const { rows } = await pool.query<{ run_id: string }>(`SELECT run_id FROM "${schema}".runs`);
  return new Set(rows.map((r) => r.run_id));
}

async function counted(kind: string): Promise<number> {
  return (await counter.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

function deps(): SchedulerJanitorDeps {
  return {
    pool,
    schema,
    storage,
    buckets,
    retention: { receipts: AGE_SECONDS, runOutputs: AGE_SECONDS, rows: AGE_SECONDS, uploads: AGE_SECONDS },
    counter,
    logger,
  };
}

beforeAll(async () => {
  const config = loadConfig('scheduler', { confDir: '/nonexistent-conf-dir', env: testEnvironment() });
  pool = createPool(config, logger);
  await migrate(pool, schema, logger);
  counter = createJanitorCounter(new Registry());
  await storage.ensureBucket(buckets.incoming);
  await storage.ensureBucket(buckets.runs);
});

afterAll(async () => {
  for (const bucket of [buckets.incoming, buckets.runs]) {
    for (const upload of await storage.listIncompleteUploads(bucket))
      await storage.abortUpload(bucket, upload.key, upload.uploadId);
    await removeBucketAndObjects(storage, bucket);
  }
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe('the scheduler janitor', () => {
  it('removes what is past its age and keeps what a live run needs', async () => {
    // Objects written now, then aged past AGE_SECONDS (S3 sets their time; it cannot be set back).
    const [freeReceipt, liveReceipt, endedReceipt, youngReceipt] = [1, 2, 3, 4].map(() => randomUUID()) as [
      string,
      string,
      string,
      string,
    ];
    for (const receipt of [freeReceipt, liveReceipt, endedReceipt]) await putReceipt(receipt);
    await storage.putBuffer(buckets.incoming, 'not-a-receipt.txt', 'x');
    await beginIncompleteUpload(s3, buckets.incoming, `${randomUUID()}.tar`);
    await beginIncompleteUpload(s3, buckets.runs, `${randomUUID()}/0/output.tar`);
    await new Promise((resolve) => setTimeout(resolve, (AGE_SECONDS + 0.5) * 1000));
    await putReceipt(youngReceipt);
    const youngUpload = `${youngReceipt}.tar`;
    await beginIncompleteUpload(s3, buckets.incoming, youngUpload);

    // Run rows: their age is their last change, set back in the database.
    const running = await insertRun('running', { receiptId: liveReceipt, endedAgo: 3600 });
    const finished = await insertRun('finished', { receiptId: endedReceipt, endedAgo: 3600 });
    const failed = await insertRun('failed', { endedAgo: 3600 });
    const failedYoung = await insertRun('failed');
    const finishedUnpublished = await insertRun('finished', { endedAgo: 3600 });
    await pool.query(
      `INSERT INTO "${schema}".dispatches (message_id, run_id, routing_key, priority, body, state)
       VALUES ($1, $2, 'flow.finished', 5, '{}', 'dispatching')`,
      [`${finishedUnpublished}:flow.finished`, finishedUnpublished],
    );
    for (const runId of [running, finished, failed, failedYoung]) await putOutputs(runId);

    const deletions = await runJanitorOnce(deps());

    // Receipts: the one a running run uses stays, however old; so do young ones and foreign objects.
    expect(await keys(buckets.incoming)).toEqual(
      [
        `${liveReceipt}.index.jsonl`,
        `${liveReceipt}.tar`,
        `${youngReceipt}.index.jsonl`,
        `${youngReceipt}.tar`,
        'not-a-receipt.txt',
      ].sort(),
    );
    // Outputs: only the old failed run's go; a finished run's are the sender's, a running run's are in use.
    expect(await keys(buckets.runs, `${failed}/`)).toEqual([]);
    for (const runId of [running, finished, failedYoung])
      expect(await keys(buckets.runs, `${runId}/`)).toHaveLength(2);
    // Rows: ended runs past the age go, unless their end is not published yet; running and young runs stay.
    expect(await runIds()).toEqual(new Set([running, failedYoung, finishedUnpublished]));
    // Incomplete uploads: the old ones are aborted in both buckets, the young one stays.
    expect((await storage.listIncompleteUploads(buckets.incoming)).map((u) => u.key)).toEqual([youngUpload]);
    expect(await storage.listIncompleteUploads(buckets.runs)).toEqual([]);

    expect(deletions).toEqual({ receipts: 2, run_outputs: 1, scheduler_runs: 2, uploads: 2 });
    expect(await counted('receipts')).toBe(2);
    expect(await counted('run_outputs')).toBe(1);
    expect(await counted('scheduler_runs')).toBe(2);
    expect(await counted('uploads')).toBe(2);

    // A second pass finds nothing more; the counters stay.
    expect(await runJanitorOnce(deps())).toEqual({
      receipts: 0,
      run_outputs: 0,
      scheduler_runs: 0,
      uploads: 0,
    });
    expect(await counted('receipts')).toBe(2);
  });

  it('keeps everything of a kind whose age is 0', async () => {
    const receipt = randomUUID();
    await putReceipt(receipt);
    const failed = await insertRun('failed', { endedAgo: 3600 });
    await putOutputs(failed);
    await new Promise((resolve) => setTimeout(resolve, (AGE_SECONDS + 0.5) * 1000));
    const deletions = await runJanitorOnce({
      ...deps(),
      retention: { receipts: 0, runOutputs: 0, rows: AGE_SECONDS, uploads: 0 },
    });
    expect(await keys(buckets.incoming, receipt)).toHaveLength(2);
    expect(await keys(buckets.runs, `${failed}/`)).toHaveLength(2);
    // Outputs kept forever do not hold their row back.
    expect(await runIds()).not.toContain(failed);
    expect(deletions).toMatchObject({ receipts: 0, run_outputs: 0, uploads: 0 });
  });

  it('skips the pass while another replica runs one', async () => {
    const other = await pool.connect();
    try {
      await other.query('SELECT pg_advisory_lock(hashtext($1))', [`dicomflow-scheduler-janitor:${schema}`]);
      const failed = await insertRun('failed', { endedAgo: 3600 });
      expect(await runJanitorOnce(deps())).toEqual({});
      expect(await runIds()).toContain(failed);
    } finally {
      await other.query('SELECT pg_advisory_unlock_all()');
      other.release();
    }
  });
});

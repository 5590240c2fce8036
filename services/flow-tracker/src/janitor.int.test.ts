import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJanitorCounter, createLogger, type JanitorCounter } from '@dicomflow/runtime';
import { waitFor } from '@dicomflow/test-helpers';
import { migrate } from './db/data-source.js';
import { RUN_STATUS } from './db/entities.js';
import { runJanitorOnce, type TrackerJanitorDeps } from './janitor.js';
import { runStory } from './testing/run-story.js';
import {
  eventsHandled,
  newIsolation,
  runRow,
  startTracker,
  testPool,
  TestPublisher,
} from './testing/tracker-harness.js';

/** The ages the janitor runs with: seconds, as the issue asks. */
const EVENTS_AGE = 60;
const RUNS_AGE = 600;
const logger = createLogger({ service: 'tracker-janitor-test', level: 'silent' });
const schema = newIsolation().schema;
let pool: pg.Pool;
let counter: JanitorCounter;

function deps(): TrackerJanitorDeps {
  return { pool, schema, retention: { events: EVENTS_AGE, runs: RUNS_AGE }, counter, logger };
}

/** A run row last changed `ago` seconds back, with one step, one send retry and two events that old. */
async function run(status: number, ago: number, receiptId: string | null = null): Promise<string> {
  const id = randomUUID();
  const at = `now() - make_interval(secs => ${ago})`;
  await pool.query(
    `INSERT INTO "${schema}".runs (id, ts, status, receipt_id, updated_at) VALUES ($1, ${at}, $2, $3, ${at})`,
    [id, status, receiptId],
  );
  await pool.query(`INSERT INTO "${schema}".steps (run_id, step, state) VALUES ($1, 0, 'finished')`, [id]);
  await pool.query(
    `INSERT INTO "${schema}".send_retries (run_id, target, kind, attempt, max_attempts, error_code,
       error_message, retrying_at, next_attempt_at)
     VALUES ($1, 'PACS@pacs:104', 'destination', 1, 10, 'unreachable', 'refused', ${at}, ${at})`,
    [id],
  );
  for (const key of ['flow.matched', 'job.finished']) await event(key, ago, id);
  return id;
}

async function event(routingKey: string, ago: number, runId: string | null, receiptId: string | null = null) {
  await pool.query(
    `INSERT INTO "${schema}".events (event_key, routing_key, run_id, receipt_id, body, recorded_at)
     VALUES ($1, $2, $3, $4, '{}', now() - make_interval(secs => $5))`,
    [`${routingKey}|${randomUUID()}`, routingKey, runId, receiptId, ago],
  );
}

/** A receipt `ago` seconds old that brought instances of `studies`. */
async function receipt(ago: number, studies: readonly string[]): Promise<string> {
  const id = randomUUID();
  const at = `now() - make_interval(secs => ${ago})`;
  await pool.query(
    `INSERT INTO "${schema}".receipts (receipt_id, received_at, calling_ae_title, calling_host, instance_count,
       study_uids) VALUES ($1, ${at}, 'SCU', '10.0.0.1', 1, $2)`,
    [id, studies.join(',')],
  );
  for (const uid of studies) {
    await pool.query(
      `INSERT INTO "${schema}".study_receipts (study_instance_uid, receipt_id, received_at, instance_count, series)
       VALUES ($1, $2, ${at}, 1, '[]')`,
      [uid, id],
    );
    await pool.query(
      `INSERT INTO "${schema}".studies (study_instance_uid, revision, series_count, instance_count,
         first_received, last_received) VALUES ($1, 1, 1, 1, ${at}, ${at})
       ON CONFLICT (study_instance_uid) DO UPDATE SET revision = studies.revision + 1`,
      [uid],
    );
  }
  await event('study.received', ago, null, id);
  return id;
}

async function ids(table: string, column: string): Promise<Set<string>> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT DISTINCT ${column} AS id FROM "${schema}".${table}`,
  );
  return new Set(rows.map((r) => r.id));
}

async function eventCount(runId: string | null): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM "${schema}".events WHERE run_id IS NOT DISTINCT FROM $1`,
    [runId],
  );
  return Number(rows[0]?.n);
}

async function counted(kind: string): Promise<number> {
  return (await counter.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

beforeAll(async () => {
  pool = testPool();
  await migrate(pool, schema, logger);
  counter = createJanitorCounter(new Registry());
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe('the tracker janitor', () => {
  it('removes events of ended runs, then runs and receipts past their own age; the row outlives its events', async () => {
    const sent = await run(RUN_STATUS.sent, 2 * EVENTS_AGE);
    const failed = await run(RUN_STATUS.failed, 2 * EVENTS_AGE);
    const sending = await run(RUN_STATUS.sending, 2 * EVENTS_AGE);
    const justSent = await run(RUN_STATUS.sent, 1);
    const ancient = await run(RUN_STATUS.running, 2 * RUNS_AGE);
    const youngReceipt = await receipt(1, ['1.2.3']);
    const oldReceipt = await receipt(2 * RUNS_AGE, ['1.2.3', '1.2.4']);
    const keptReceipt = await receipt(2 * RUNS_AGE, ['1.2.5']);
    const keeper = await run(RUN_STATUS.sent, 1, keptReceipt);

    const deletions = await runJanitorOnce(deps());

    // Events: those of ended runs unchanged for EVENTS_AGE go, and old ones of no run; the rows stay.
    expect(await eventCount(sent)).toBe(0);
    expect(await eventCount(failed)).toBe(0);
    expect(await eventCount(sending)).toBe(2);
    expect(await eventCount(justSent)).toBe(2);
    expect(await eventCount(null)).toBe(1);
    // Runs: only the one unchanged for RUNS_AGE, with its steps, retries and events.
    expect(await ids('runs', 'id')).toEqual(new Set([sent, failed, sending, justSent, keeper]));
    for (const table of ['steps', 'send_retries']) expect(await ids(table, 'run_id')).not.toContain(ancient);
    expect(await eventCount(ancient)).toBe(0);
    // Receipts: the old one no run refers to goes, with what it brought; a study keeps its other receipts.
    expect(await ids('receipts', 'receipt_id')).toEqual(new Set([youngReceipt, keptReceipt]));
    expect(await ids('study_receipts', 'receipt_id')).not.toContain(oldReceipt);
    expect(await ids('study_receipts', 'receipt_id')).toEqual(new Set([youngReceipt, keptReceipt]));
    expect(await ids('studies', 'study_instance_uid')).toEqual(new Set(['1.2.3', '1.2.5']));

    // 2 ended runs x 2 events and 2 old study.received events; 1 run; 1 receipt.
    expect(deletions).toEqual({ tracker_events: 6, tracker_runs: 1, tracker_receipts: 1 });
    expect(await counted('tracker_events')).toBe(6);
    expect(await counted('tracker_runs')).toBe(1);
    expect(await counted('tracker_receipts')).toBe(1);
    expect(await runJanitorOnce(deps())).toEqual({ tracker_events: 0, tracker_runs: 0, tracker_receipts: 0 });
  });

  it('keeps events and runs forever with ages of 0', async () => {
    const sent = await run(RUN_STATUS.sent, 10 * RUNS_AGE);
    expect(await runJanitorOnce({ ...deps(), retention: { events: 0, runs: 0 } })).toEqual({
      tracker_events: 0,
      tracker_runs: 0,
      tracker_receipts: 0,
    });
    expect(await eventCount(sent)).toBe(2);
    expect(await ids('runs', 'id')).toContain(sent);
  });
});

describe('the tracker service', () => {
  it('runs its janitor on the timer, counts on /metrics, and stops it on close', async () => {
    const isolation = newIsolation();
    const publisher = await TestPublisher.open(isolation);
    const tracker = await startTracker(isolation, { RETENTION_EVENTS: '1', JANITOR_INTERVAL: '1' });
    try {
      const story = runStory();
      await publisher.publish(story.events);
      await waitFor(
        async () => (await eventsHandled(tracker.baseUrl)) >= story.events.length,
        'events handled',
      );
      const removed = async (): Promise<number> => {
        const text = await (await fetch(`${tracker.baseUrl}/metrics`)).text();
        const line = /^dicomflow_janitor_deleted_total\{[^}]*kind="tracker_events"[^}]*\} (\d+)/m.exec(text);
        return Number(line?.[1] ?? 0);
      };
      await waitFor(
        async () => (await removed()) >= story.events.length,
        'the events removed by the janitor',
      );
      const { rows } = await pool.query(`SELECT 1 FROM "${isolation.schema}".events`);
      expect(rows).toEqual([]);
      // The run's row outlives its events.
      expect(await runRow(pool, isolation.schema, story.runId)).toMatchObject({ status: RUN_STATUS.sent });
    } finally {
      await tracker.close();
      await tracker.service.close();
      await publisher.cleanup(pool);
    }
  });
});

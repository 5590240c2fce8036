import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createLogger } from '@dicomflow/runtime';
import { testEnvironment } from '@dicomflow/test-helpers';
import type { DataSource } from 'typeorm';
import { createDataSource, migrate } from './db/data-source.js';
import { EventStore } from './events/event-store.js';
import { runStory, storyImageId, type RunStory } from './testing/run-story.js';
import { newIsolation, testPool } from './testing/tracker-harness.js';

const GRAFANA = new URL('../../../mounts/grafana/', import.meta.url);
const FROM = '2026-03-01T00:00:00Z';
const TO = '2026-03-02T00:00:00Z';

interface Panel {
  title: string;
  datasource?: { uid?: string };
  targets?: { rawSql?: string; format?: string; datasource?: { uid?: string } }[];
}

/** The SQL Grafana's PostgreSQL data source would run for `sql` over FROM..TO, in `schema`. */
function expandMacros(sql: string, schema: string): string {
  const seconds = (interval: string): number => {
    const m = /^'?(\d+)([smhd])'?$/.exec(interval.trim());
    if (!m) throw new Error(`unsupported interval ${interval}`);
    return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
  };
  const expanded = sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, col: string) => `${col.trim()} BETWEEN '${FROM}' AND '${TO}'`)
    .replace(/\$__timeFrom\(\)/g, `'${FROM}'`)
    .replace(/\$__timeTo\(\)/g, `'${TO}'`)
    .replace(
      /\$__timeGroupAlias\(([^,]+),([^)]+)\)/g,
      (_, col: string, interval: string) =>
        `floor(extract(epoch from ${col.trim()})/${seconds(interval)})*${seconds(interval)} AS "time"`,
    )
    .replace(
      /\$__timeGroup\(([^,]+),([^)]+)\)/g,
      (_, col: string, interval: string) =>
        `floor(extract(epoch from ${col.trim()})/${seconds(interval)})*${seconds(interval)}`,
    )
    .replace(/\btracker\./g, `"${schema}".`);
  if (expanded.includes('$')) throw new Error(`a macro or variable is left in: ${expanded}`);
  return expanded;
}

describe('Grafana dashboard queries on the tracker schema', () => {
  let pool: pg.Pool;
  let dataSource: DataSource;
  const schema = newIsolation().schema;
  const panels = new Map<string, Panel>();
  let happy1: RunStory, happy3: RunStory, jobFailed: RunStory, sendFailed: RunStory, notSent: RunStory;

  beforeAll(async () => {
    pool = testPool();
    const env = testEnvironment();
    dataSource = createDataSource({
      DB_HOST: env.DB_HOST ?? '',
      DB_PORT: Number(env.DB_PORT),
      DB_NAME: env.DB_NAME ?? '',
      DB_USER: env.DB_USER ?? '',
      DB_PASS: env.DB_PASS ?? '',
      TRACKER_DB_SCHEMA: schema,
    });
    await dataSource.initialize();
    await migrate(pool, schema, createLogger({ service: 'dashboard-test', level: 'silent' }));
    // Runs whose stage times are known: receipt to dispatch 2 s; running 12 s per model; sending 5 s.
    happy1 = runStory({ models: 1, receivedAt: new Date('2026-03-01T10:00:00Z') });
    happy3 = runStory({ models: 3, receivedAt: new Date('2026-03-01T10:20:00Z') });
    jobFailed = runStory({ failAtStep: 0, receivedAt: new Date('2026-03-01T10:40:00Z') });
    sendFailed = runStory({ sendFails: true, receivedAt: new Date('2026-03-01T11:10:00Z') });
    notSent = runStory({ noSend: true, receivedAt: new Date('2026-03-01T11:30:00Z') });
    const outside = runStory({ receivedAt: new Date('2026-02-20T10:00:00Z') });
    const store = new EventStore(dataSource);
    for (const story of [happy1, happy3, jobFailed, sendFailed, notSent, outside])
      for (const { messageId, event } of story.events)
        await store.record(`${event.routingKey}|${messageId}`, event);

    const dashboard = JSON.parse(await readFile(new URL('dashboards/dicomflow.json', GRAFANA), 'utf8')) as {
      panels: Panel[];
    };
    for (const panel of dashboard.panels) panels.set(panel.title, panel);
  });

  afterAll(async () => {
    await dataSource.destroy();
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  const rowsOf = async (title: string): Promise<Record<string, unknown>[]> => {
    const sql = panels.get(title)?.targets?.[0]?.rawSql;
    if (sql === undefined) throw new Error(`no panel "${title}" with a query`);
    return (await pool.query<Record<string, unknown>>(expandMacros(sql, schema))).rows;
  };

  it('every panel queries the provisioned data source, and every query runs', async () => {
    const provisioning = await readFile(new URL('provisioning/datasources/postgres.yaml', GRAFANA), 'utf8');
    const uid = /^\s+uid:\s*(\S+)/m.exec(provisioning)?.[1];
    expect(uid).toBe('dicomflow-postgres');
    expect(panels.size).toBeGreaterThanOrEqual(5);
    for (const panel of panels.values()) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.datasource?.uid ?? panel.datasource?.uid, panel.title).toBe(uid);
        expect(target.rawSql, panel.title).toBeTruthy();
        await pool.query(expandMacros(target.rawSql ?? '', schema));
      }
    }
  });

  it('runs table: runs of the time range, newest first, status as words', async () => {
    const rows = await rowsOf('Runs');
    expect(rows.map((r) => [r.run, r.status, r.reason])).toEqual([
      [notSent.runId, 'finished', null],
      [sendFailed.runId, 'failed', 'send-unreachable'],
      [jobFailed.runId, 'failed', 'exit-code'],
      [happy3.runId, 'sent', null],
      [happy1.runId, 'sent', null],
    ]);
    expect(rows[4]).toMatchObject({
      flow: 'CT copy',
      version: '1.0',
      study: happy1.studyInstanceUid,
      sender: 'SCANNER1@10.0.0.7',
    });
  });

  it('runs by status and per hour by status', async () => {
    expect(await rowsOf('Runs by status')).toEqual([
      { status: 'finished', runs: '1' },
      { status: 'sent', runs: '2' },
      { status: 'failed', runs: '2' },
    ]);
    const perHour = (await rowsOf('Runs per hour by status')).map((r) => [
      new Date(Number(r.time) * 1000).toISOString(),
      r.metric,
      Number(r.runs),
    ]);
    expect(perHour).toEqual([
      ['2026-03-01T10:00:00.000Z', 'failed', 1],
      ['2026-03-01T10:00:00.000Z', 'sent', 2],
      ['2026-03-01T11:00:00.000Z', 'failed', 1],
      ['2026-03-01T11:00:00.000Z', 'finished', 1],
    ]);
  });

  it('failures with their reasons', async () => {
    expect(await rowsOf('Failures by reason')).toEqual([
      { reason: 'exit-code', failures: '1' },
      { reason: 'send-unreachable', failures: '1' },
    ]);
    expect(await rowsOf('Failures')).toMatchObject([
      {
        run: sendFailed.runId,
        reason: 'send-unreachable',
        message: 'PACS@pacs.example:104 unreachable after 3 attempts',
      },
      { run: jobFailed.runId, reason: 'exit-code', message: 'the container exited with code 3' },
    ]);
  });

  it('run provenance: flow hash, received and delivered counts, each step with the image id it ran', async () => {
    const receivedRows = Array.from({ length: 5 }, (_, i) => `1.2.3.${i + 1}`);
    await pool.query(
      `INSERT INTO "${schema}".received_instances
         (receipt_id, sop_instance_uid, study_instance_uid, series_instance_uid, sop_class_uid)
       SELECT $1, uid, '1.2', '1.2.1', '1.2.840.10008.5.1.4.1.1.2' FROM unnest($2::text[]) uid`,
      [happy1.receiptId, receivedRows],
    );
    // One instance delivered to two destinations counts once.
    await pool.query(
      `INSERT INTO "${schema}".delivered_instances (run_id, sop_instance_uid, destination, step, delivered_at)
       VALUES ($1, '2.25.1', 'PACS@pacs.example:104', 0, now()), ($1, '2.25.1', 'B@b:104', 0, now()),
              ($1, '2.25.2', 'PACS@pacs.example:104', 0, now())`,
      [happy1.runId],
    );
    const rows = await rowsOf('Run provenance');
    expect(rows.map((r) => r.run)).toEqual([
      notSent.runId,
      sendFailed.runId,
      jobFailed.runId,
      happy3.runId,
      happy1.runId,
    ]);
    expect(rows[4]).toMatchObject({
      flow: 'CT copy',
      file: 'ct-copy.yaml',
      flow_hash: 'ab'.repeat(32),
      receipt: happy1.receiptId,
      received: '5',
      delivered: '2',
      steps: `0: model-0:1 ${storyImageId(0)} on worker-1 exit 0`,
    });
    expect(rows[3]?.steps).toBe(
      [0, 1, 2].map((step) => `${step}: model-${step}:1 ${storyImageId(step)} on worker-1 exit 0`).join('; '),
    );
  });

  it('result time per flow, queue wait per queue and priority, container time per image', async () => {
    const numbers = (rows: Record<string, unknown>[], keys: string[]): unknown[][] =>
      rows.map((r) =>
        keys.map((k) => (k === 'queue' || k === 'flow' || k === 'image' ? r[k] : Number(r[k]))),
      );
    // Sent runs: 19 s (1 model) and 43 s (3 models) from receipt to delivered.
    expect(numbers(await rowsOf('Result time per flow (p50 / p95)'), ['flow', 'p50', 'p95', 'runs'])).toEqual(
      [['CT copy', 31, expect.closeTo(41.8, 6), 2]],
    );
    // Every job waits 3 s; first models at the flow's priority 2, later ones at 5; the second model on the GPU.
    expect(
      numbers(await rowsOf('Queue wait per queue and priority (p50 / p95)'), [
        'queue',
        'priority',
        'p50',
        'p95',
        'jobs',
      ]),
    ).toEqual([
      ['jobs.cpu', 2, 3, 3, 5],
      ['jobs.cpu', 5, 3, 3, 1],
      ['jobs.gpu', 5, 3, 3, 3],
    ]);
    // Every container runs 7 s (the failed one too: it ran to its exit).
    expect(
      numbers(await rowsOf('Container time per image (p50 / p95)'), ['image', 'p50', 'p95', 'jobs']),
    ).toEqual([
      ['model-0:1', 7, 7, 5],
      ['model-1:1', 7, 7, 3],
      ['model-2:1', 7, 7, 1],
    ]);
  });

  it('time per stage as p50 and p95', async () => {
    const rows = (await rowsOf('Time per stage (p50 / p95)')).map((r) => [
      r.stage,
      Number(r.p50),
      Number(r.p95),
      Number(r.runs),
    ]);
    // running: 12 s (1 model), 36 s (3), 24 s (the run whose send failed), 24 s (not sent yet) -> p95 24 + 0.85 * 12
    expect(rows).toEqual([
      ['received to dispatched', 2, 2, 5],
      ['running', 24, expect.closeTo(34.2, 6), 4],
      ['sending', 5, 5, 2],
    ]);
  });
});

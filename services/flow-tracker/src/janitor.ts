import { inTransaction, quoteIdentifier, withTryLock, type Pool } from '@dicomflow/database';
import {
  runJanitorSteps,
  retentionCutoff,
  type Deletions,
  type JanitorCounter,
  type Logger,
} from '@dicomflow/runtime';
import { RUN_STATUS } from './db/entities.js';

/*
 * What the tracker's janitor removes. A run's row is rebuilt from all of its events whenever one arrives,
 * so the events of a run are removed only once the run has ended (sent or failed) and nothing changed for
 * RETENTION_EVENTS: the row then stays as it is, and outlives its events (RETENTION_RUNS, longer).
 *
 * - Events of ended runs unchanged for RETENTION_EVENTS, and events of no run (study.received) older
 *   than that: the receipt they describe is kept in `receipts`.
 * - Runs unchanged for RETENTION_RUNS, whatever their status (no event came for that long: the run is over),
 *   with their steps, send retries and any events left.
 * - Receipts (and what they brought to each study) older than RETENTION_RUNS that no kept run refers to,
 *   and studies left with no receipt.
 */

/** Retention ages, in seconds; 0 keeps that kind forever. */
export interface TrackerRetention {
  readonly events: number;
  readonly runs: number;
}

/** What a janitor pass works with. */
export interface TrackerJanitorDeps {
  readonly pool: Pool;
  readonly schema: string;
  readonly retention: TrackerRetention;
  readonly counter: JanitorCounter;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/** Rows handled per statement, so one pass never holds long locks or large results. */
const BATCH = 1000;
const ENDED: readonly number[] = [RUN_STATUS.sent, RUN_STATUS.failed];

/**
 * One janitor pass. With several replicas, one at a time runs it (an advisory lock; the others skip the
 * pass). Deletions are counted and logged, also when a later kind fails; the first failure is thrown.
 */
export async function runJanitorOnce(deps: TrackerJanitorDeps): Promise<Deletions> {
  const outcome = await withTryLock(deps.pool, `dicomflow-tracker-janitor:${deps.schema}`, () =>
    runJanitorSteps(
      [
        ['tracker_events', () => removeEvents(deps)],
        ['tracker_runs', () => removeRuns(deps)],
        ['tracker_receipts', () => removeReceipts(deps)],
      ],
      deps,
    ),
  );
  return outcome.locked ? outcome.result : {};
}

/** Runs `batch` until it removes fewer than {@link BATCH} rows; resolves with the total. */
async function inBatches(deps: TrackerJanitorDeps, batch: () => Promise<number>): Promise<number> {
  let removed = 0;
  for (;;) {
    const count = await batch();
    removed += count;
    if (count < BATCH || deps.signal?.aborted === true) return removed;
  }
}

async function removeEvents(deps: TrackerJanitorDeps): Promise<number> {
  if (deps.retention.events === 0) return 0;
  const s = quoteIdentifier(deps.schema);
  const before = retentionCutoff(deps.retention.events);
  return inBatches(deps, async () => {
    const result = await deps.pool.query(
      `DELETE FROM ${s}.events WHERE event_key IN (
         SELECT e.event_key FROM ${s}.events e LEFT JOIN ${s}.runs r ON r.id = e.run_id
         WHERE e.recorded_at < $1
           AND (e.run_id IS NULL OR (r.status = ANY($2::integer[]) AND r.updated_at < $1))
         LIMIT $3)`,
      [before, ENDED, BATCH],
    );
    return result.rowCount ?? 0;
  });
}

async function removeRuns(deps: TrackerJanitorDeps): Promise<number> {
  if (deps.retention.runs === 0) return 0;
  const s = quoteIdentifier(deps.schema);
  const before = retentionCutoff(deps.retention.runs);
  return inBatches(deps, () =>
    inTransaction(deps.pool, async (client) => {
      // Steps and send retries go with their run (ON DELETE CASCADE); events name it without a key.
      const { rows } = await client.query<{ id: string }>(
        `DELETE FROM ${s}.runs WHERE id IN (SELECT id FROM ${s}.runs WHERE updated_at < $1 LIMIT $2)
         RETURNING id`,
        [before, BATCH],
      );
      const ids = rows.map((row) => row.id);
      if (ids.length > 0) await client.query(`DELETE FROM ${s}.events WHERE run_id = ANY($1::uuid[])`, [ids]);
      return ids.length;
    }),
  );
}

async function removeReceipts(deps: TrackerJanitorDeps): Promise<number> {
  if (deps.retention.runs === 0) return 0;
  const s = quoteIdentifier(deps.schema);
  const before = retentionCutoff(deps.retention.runs);
  return inBatches(deps, () =>
    inTransaction(deps.pool, async (client) => {
      const { rows } = await client.query<{ receipt_id: string }>(
        `DELETE FROM ${s}.receipts WHERE receipt_id IN (
           SELECT c.receipt_id FROM ${s}.receipts c
           WHERE c.received_at < $1
             AND NOT EXISTS (SELECT 1 FROM ${s}.runs r WHERE r.receipt_id = c.receipt_id)
           LIMIT $2)
         RETURNING receipt_id`,
        [before, BATCH],
      );
      const ids = rows.map((row) => row.receipt_id);
      if (ids.length === 0) return 0;
      const { rows: studies } = await client.query<{ study_instance_uid: string }>(
        `DELETE FROM ${s}.study_receipts WHERE receipt_id = ANY($1::uuid[]) RETURNING study_instance_uid`,
        [ids],
      );
      // A study keeps its counts while any of its receipts is kept; with none left, it goes too.
      await client.query(
        `DELETE FROM ${s}.studies st WHERE st.study_instance_uid = ANY($1::text[])
           AND NOT EXISTS (
             SELECT 1 FROM ${s}.study_receipts sr WHERE sr.study_instance_uid = st.study_instance_uid
           )`,
        [[...new Set(studies.map((row) => row.study_instance_uid))]],
      );
      return ids.length;
    }),
  );
}

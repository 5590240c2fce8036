import { quoteIdentifier, withTryLock, type Pool } from '@dicomflow/database';
import {
  runJanitorSteps,
  retentionCutoff,
  type Deletions,
  type JanitorCounter,
  type Logger,
} from '@dicomflow/runtime';
import { StorageError, type Storage } from '@dicomflow/storage';
import { runLockKey } from './db/run-lock.js';

/*
 * What the sender's janitor removes, and why that never takes what a live delivery needs:
 *
 * - Model outputs (runs `<runId>/...`) of runs whose delivery ended (send.finished or send.failed
 *   published) longer than RETENTION_RUN_OUTPUTS ago. From `flow.finished` on, a run's outputs are the
 *   sender's (the scheduler removes only those of failed runs, which are never sent). A delivery that has
 *   not ended, however long it has been retrying a destination that is down, or whose message waits for a
 *   retry or in the dead letters, is `sending` and keeps them. Each run is re-checked under the run's own
 *   lock, which every delivery holds, so a delivery starting meanwhile (a redelivery, a resend) waits.
 * - Delivery and acknowledgement rows older than RETENTION_ROWS, never those of a run being delivered,
 *   and a delivery row only once its outputs are gone (the row is what finds them).
 */

/** Retention ages, in seconds; 0 keeps that kind forever. */
export interface SenderRetention {
  readonly runOutputs: number;
  readonly rows: number;
}

/** What a janitor pass works with. */
export interface SenderJanitorDeps {
  readonly pool: Pool;
  readonly schema: string;
  readonly storage: Storage;
  readonly retention: SenderRetention;
  readonly counter: JanitorCounter;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/** Rows handled per statement, so one pass never holds long locks or large results. */
const BATCH = 500;

/**
 * One janitor pass. With several replicas, one at a time runs it (an advisory lock; the others skip the
 * pass). Deletions are counted and logged, also when a later kind fails; the first failure is thrown.
 */
export async function runJanitorOnce(deps: SenderJanitorDeps): Promise<Deletions> {
  const outcome = await withTryLock(deps.pool, `dicomflow-sender-janitor:${deps.schema}`, () =>
    runJanitorSteps(
      [
        ['run_outputs', () => removeDeliveredOutputs(deps)],
        ['sender_deliveries', () => removeDeliveryRows(deps)],
        ['sender_acks', () => removeAckRows(deps)],
      ],
      deps,
    ),
  );
  return outcome.locked ? outcome.result : {};
}

interface DeliveryRow {
  run_id: string;
  output_bucket: string;
}

/** Outputs of runs delivered long enough ago. Counts runs. */
async function removeDeliveredOutputs(deps: SenderJanitorDeps): Promise<number> {
  if (deps.retention.runOutputs === 0) return 0;
  const table = `${quoteIdentifier(deps.schema)}.deliveries`;
  const expired = `state = 'done' AND outputs_removed_at IS NULL AND updated_at < $1`;
  let removed = 0;
  // Runs whose delivery holds the lock are skipped in this pass; remembered so the loop moves past them.
  const busy: string[] = [];
  for (;;) {
    const { rows } = await deps.pool.query<DeliveryRow>(
      `SELECT run_id, output_bucket FROM ${table} WHERE ${expired} AND NOT (run_id = ANY($3::uuid[]))
       ORDER BY updated_at LIMIT $2`,
      [retentionCutoff(deps.retention.runOutputs), BATCH, busy],
    );
    for (const row of rows) {
      if (deps.signal?.aborted === true) return removed;
      const outcome = await withTryLock(deps.pool, runLockKey(deps.schema, row.run_id), async (client) => {
        const { rowCount } = await client.query(`SELECT 1 FROM ${table} WHERE run_id = $2 AND ${expired}`, [
          retentionCutoff(deps.retention.runOutputs),
          row.run_id,
        ]);
        if (rowCount === 0) return false;
        await removeOutputs(deps.storage, row);
        await client.query(`UPDATE ${table} SET outputs_removed_at = now() WHERE run_id = $1`, [row.run_id]);
        return true;
      });
      if (!outcome.locked) busy.push(row.run_id);
      else if (outcome.result) removed++;
    }
    if (rows.length < BATCH) return removed;
  }
}

async function removeOutputs(storage: Storage, row: DeliveryRow): Promise<void> {
  const objects = await storage.list(row.output_bucket, `${row.run_id}/`).catch((err: unknown) => {
    if (err instanceof StorageError && err.kind === 'gone') return [];
    throw err;
  });
  await storage.removeObjects(
    row.output_bucket,
    objects.map((object) => object.key),
  );
}

/** Rows of deliveries over long enough ago whose outputs are gone (or kept forever). Counts rows. */
async function removeDeliveryRows(deps: SenderJanitorDeps): Promise<number> {
  if (deps.retention.rows === 0) return 0;
  const table = `${quoteIdentifier(deps.schema)}.deliveries`;
  return deleteInBatches(
    deps,
    `DELETE FROM ${table} WHERE run_id IN (
       SELECT run_id FROM ${table}
       WHERE state = 'done' AND updated_at < $1 AND (outputs_removed_at IS NOT NULL OR $2) LIMIT $3)`,
    [retentionCutoff(deps.retention.rows), deps.retention.runOutputs === 0],
  );
}

/** Acknowledgements older than the age, except those of runs being delivered. Counts rows. */
async function removeAckRows(deps: SenderJanitorDeps): Promise<number> {
  if (deps.retention.rows === 0) return 0;
  const schema = quoteIdentifier(deps.schema);
  return deleteInBatches(
    deps,
    `DELETE FROM ${schema}.acks WHERE ctid IN (
       SELECT a.ctid FROM ${schema}.acks a
       WHERE a.acked_at < $1 AND NOT EXISTS (
         SELECT 1 FROM ${schema}.deliveries d WHERE d.run_id = a.run_id AND d.state = 'sending'
       ) LIMIT $2)`,
    [retentionCutoff(deps.retention.rows)],
  );
}

/** Runs `sql` (whose last parameter is the batch size) until it deletes less than a batch. */
async function deleteInBatches(deps: SenderJanitorDeps, sql: string, params: unknown[]): Promise<number> {
  let removed = 0;
  for (;;) {
    const result = await deps.pool.query(sql, [...params, BATCH]);
    const count = result.rowCount ?? 0;
    removed += count;
    if (count < BATCH || deps.signal?.aborted === true) return removed;
  }
}

import { quoteIdentifier, withTryLock, type Pool } from '@dicomflow/database';
import {
  runJanitorSteps,
  retentionCutoff,
  type Deletions,
  type JanitorCounter,
  type Logger,
} from '@dicomflow/runtime';
import { abortStaleUploads, StorageError, type Storage } from '@dicomflow/storage';

/*
 * What the scheduler's janitor removes, and why that never takes what a live run needs:
 *
 * - Receipts (incoming `<receiptId>.*`) older than RETENTION_RECEIPTS, except those of a run the scheduler
 *   still has `running`: the consumer reads a receipt only for a run's first job, and a run stops being
 *   `running` only once its last step's outcome is recorded.
 * - Model outputs (runs `<runId>/...`) of runs that *failed* longer than RETENTION_RUN_OUTPUTS ago. A failed
 *   run is never sent, so nothing reads its outputs again. The outputs of a *finished* run belong to the
 *   sender from the moment the scheduler hands the run over (`flow.finished`): only the sender knows when
 *   its delivery is over (it may retry a destination that is down for days), so its janitor removes them.
 *   Outputs of a `running` run are never touched.
 * - Run rows of runs that ended longer than RETENTION_ROWS ago, once their end message is published (a
 *   dispatch still `dispatching` would be lost) and, for a failed run, once its outputs are gone (the row is
 *   what finds them).
 * - Multipart uploads of the incoming and runs buckets left incomplete longer than RETENTION_UPLOADS.
 */

/** Retention ages, in seconds; 0 keeps that kind forever. */
export interface SchedulerRetention {
  readonly receipts: number;
  readonly runOutputs: number;
  readonly rows: number;
  readonly uploads: number;
}

/** What a janitor pass works with. */
export interface SchedulerJanitorDeps {
  readonly pool: Pool;
  readonly schema: string;
  readonly storage: Storage;
  readonly buckets: { readonly incoming: string; readonly runs: string };
  readonly retention: SchedulerRetention;
  readonly counter: JanitorCounter;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/** Rows handled per statement, so one pass never holds long locks or large results. */
const BATCH = 500;
/** `<receiptId>.tar`, `<receiptId>.index.jsonl`, ...: the receipt id is the key up to its first dot. */
const RECEIPT_KEY = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\./i;

/**
 * One janitor pass. With several replicas, one at a time runs it (an advisory lock; the others skip the
 * pass). Each kind is tried even when another failed; deletions are counted and logged, and the first
 * failure is thrown afterwards.
 */
export async function runJanitorOnce(deps: SchedulerJanitorDeps): Promise<Deletions> {
  const outcome = await withTryLock(deps.pool, `dicomflow-scheduler-janitor:${deps.schema}`, () =>
    runJanitorSteps(
      [
        ['receipts', () => removeReceipts(deps)],
        ['run_outputs', () => removeFailedRunOutputs(deps)],
        ['scheduler_runs', () => removeRunRows(deps)],
        ['uploads', () => abortUploads(deps)],
      ],
      deps,
    ),
  );
  return outcome.locked ? outcome.result : {};
}

/** Old receipts no running run uses. Counts receipts. */
async function removeReceipts(deps: SchedulerJanitorDeps): Promise<number> {
  if (deps.retention.receipts === 0) return 0;
  const before = retentionCutoff(deps.retention.receipts).getTime();
  const bucket = deps.buckets.incoming;
  const objects = await deps.storage.list(bucket).catch((err: unknown) => {
    if (err instanceof StorageError && err.kind === 'gone') return [];
    throw err;
  });
  // A receipt is as old as its newest object (a publish retried after a crash writes them again).
  const receipts = new Map<string, { keys: string[]; newest: number }>();
  for (const object of objects) {
    const id = RECEIPT_KEY.exec(object.key)?.[1]?.toLowerCase();
    if (id === undefined) continue;
    const receipt = receipts.get(id) ?? { keys: [], newest: 0 };
    receipt.keys.push(object.key);
    receipt.newest = Math.max(receipt.newest, object.lastModified.getTime());
    receipts.set(id, receipt);
  }
  const old = [...receipts].filter(([, receipt]) => receipt.newest < before).map(([id]) => id);
  let removed = 0;
  for (let start = 0; start < old.length && deps.signal?.aborted !== true; start += BATCH) {
    const ids = old.slice(start, start + BATCH);
    const { rows } = await deps.pool.query<{ receipt_id: string }>(
      `SELECT DISTINCT receipt_id FROM ${quoteIdentifier(deps.schema)}.runs
       WHERE status = 'running' AND receipt_id = ANY($1::uuid[])`,
      [ids],
    );
    const inUse = new Set(rows.map((row) => row.receipt_id));
    const expired = ids.filter((id) => !inUse.has(id));
    await deps.storage.removeObjects(
      bucket,
      expired.flatMap((id) => receipts.get(id)?.keys ?? []),
    );
    removed += expired.length;
  }
  return removed;
}

/** Outputs of runs that failed long enough ago. Counts runs. */
async function removeFailedRunOutputs(deps: SchedulerJanitorDeps): Promise<number> {
  if (deps.retention.runOutputs === 0) return 0;
  const runs = `${quoteIdentifier(deps.schema)}.runs`;
  let removed = 0;
  for (;;) {
    const { rows } = await deps.pool.query<{ run_id: string }>(
      `SELECT run_id FROM ${runs}
       WHERE status = 'failed' AND outputs_removed_at IS NULL AND updated_at < $1
       ORDER BY updated_at LIMIT $2`,
      [retentionCutoff(deps.retention.runOutputs), BATCH],
    );
    for (const { run_id: runId } of rows) {
      if (deps.signal?.aborted === true) return removed;
      const objects = await deps.storage.list(deps.buckets.runs, `${runId}/`).catch((err: unknown) => {
        if (err instanceof StorageError && err.kind === 'gone') return [];
        throw err;
      });
      await deps.storage.removeObjects(
        deps.buckets.runs,
        objects.map((object) => object.key),
      );
      await deps.pool.query(`UPDATE ${runs} SET outputs_removed_at = now() WHERE run_id = $1`, [runId]);
      removed++;
    }
    if (rows.length < BATCH) return removed;
  }
}

/** Rows of runs that ended long enough ago and need nothing more. Counts runs (their steps and dispatches go with them). */
async function removeRunRows(deps: SchedulerJanitorDeps): Promise<number> {
  if (deps.retention.rows === 0) return 0;
  const schema = quoteIdentifier(deps.schema);
  let removed = 0;
  for (;;) {
    const result = await deps.pool.query(
      `DELETE FROM ${schema}.runs WHERE run_id IN (
         SELECT r.run_id FROM ${schema}.runs r
         WHERE r.status IN ('finished', 'failed') AND r.updated_at < $1
           AND (r.status = 'finished' OR r.outputs_removed_at IS NOT NULL OR $2)
           AND NOT EXISTS (
             SELECT 1 FROM ${schema}.dispatches d WHERE d.run_id = r.run_id AND d.state = 'dispatching'
           )
         LIMIT $3)`,
      [retentionCutoff(deps.retention.rows), deps.retention.runOutputs === 0, BATCH],
    );
    const count = result.rowCount ?? 0;
    removed += count;
    if (count < BATCH || deps.signal?.aborted === true) return removed;
  }
}

/** Incomplete multipart uploads in the buckets whose objects this janitor owns. Counts uploads. */
async function abortUploads(deps: SchedulerJanitorDeps): Promise<number> {
  if (deps.retention.uploads === 0) return 0;
  const before = retentionCutoff(deps.retention.uploads);
  let aborted = 0;
  for (const bucket of new Set([deps.buckets.incoming, deps.buckets.runs])) {
    aborted += await abortStaleUploads(deps.storage, bucket, before);
  }
  return aborted;
}

import { PermanentError } from '@dicomflow/runtime';
import {
  jobMessageId,
  validateMessage,
  type FlowMatched,
  type JobFailed,
  type JobFinished,
} from '@dicomflow/messages';
import {
  planAfterFailed,
  planAfterFinished,
  planFirst,
  type Dispatch,
  type DispatchKey,
  type PlanContext,
} from '../runs/plan.js';
import { inTransaction, quoteIdentifier, type Pool, type PoolClient } from '@dicomflow/database';

/** What recording an incoming message decided. */
export type Decision =
  /** `dispatch` follows from the message; `created` is false when an earlier delivery already decided it. */
  | { readonly kind: 'dispatch'; readonly dispatch: StoredDispatch; readonly created: boolean }
  /** Nothing follows (e.g. a step outcome contradicting the one recorded first); `why` says so. */
  | { readonly kind: 'ignore'; readonly why: string };

/** A dispatch as recorded: enough to publish it and to log what it is. */
export interface StoredDispatch {
  readonly messageId: string;
  readonly runId: string;
  readonly step: number | undefined;
  readonly routingKey: DispatchKey;
  readonly priority: number;
  readonly state: 'dispatching' | 'dispatched';
}

/** A recorded dispatch with its body, as the publisher needs it. */
export type PendingDispatch = StoredDispatch & { readonly body: unknown };

/** Counts of runs by status. */
export type RunCounts = Record<'running' | 'finished' | 'failed', number>;

interface RunRow {
  matched: FlowMatched;
  status: 'running' | 'finished' | 'failed';
}

interface DispatchRow {
  message_id: string;
  run_id: string;
  step: number | null;
  routing_key: DispatchKey;
  priority: number;
  state: 'dispatching' | 'dispatched';
  body?: unknown;
}

/**
 * The scheduler's run state in PostgreSQL. Each incoming message is recorded in one transaction together
 * with the dispatch it implies, under the dispatch's deterministic message id (unique), so that however
 * often a message arrives, what follows from it is decided and recorded once.
 */
export class RunStore {
  readonly #pool: Pool;
  readonly #schema: string;
  readonly #runsBucket: string;

  constructor(pool: Pool, schema: string, runsBucket: string) {
    this.#pool = pool;
    this.#schema = quoteIdentifier(schema);
    this.#runsBucket = runsBucket;
  }

  /** Records a new run (once per run id) and its first dispatch. A repeat finds both and returns them. */
  async recordFlowMatched(matched: FlowMatched, now: Date): Promise<Decision> {
    return inTransaction(this.#pool, async (client) => {
      await client.query(
        `INSERT INTO ${this.#schema}.runs (run_id, receipt_id, matched, step_count, status)
         VALUES ($1, $2, $3, $4, 'running') ON CONFLICT (run_id) DO NOTHING`,
        [matched.runId, matched.receiptId, JSON.stringify(matched), matched.flow.models.length],
      );
      // Planned from the stored run, so a repeat carrying something else still yields the same dispatch.
      const run = await this.#lockRun(client, matched.runId);
      return this.#decide(client, planFirst(run.matched, this.#context(now)));
    });
  }

  /** Records the end of a step (first outcome wins) and the next job or the run's `flow.finished`. */
  async recordJobFinished(finished: JobFinished, messageId: string, now: Date): Promise<Decision> {
    return inTransaction(this.#pool, async (client) => {
      const run = await this.#lockRun(client, finished.runId);
      await this.#checkDispatched(client, run, finished.step);
      const first = await this.#recordOutcome(
        client,
        finished.runId,
        finished.step,
        'finished',
        finished,
        messageId,
      );
      if (first.outcome !== 'finished') {
        return { kind: 'ignore', why: `step ${finished.step} already failed; this job.finished is ignored` };
      }
      const recorded = first.body as JobFinished;
      return this.#decide(
        client,
        planAfterFinished(run.matched, recorded.step, recorded.output, this.#context(now)),
      );
    });
  }

  /** Records the failure of a step (first outcome wins) and the run's `flow.failed`. */
  async recordJobFailed(failed: JobFailed, messageId: string, now: Date): Promise<Decision> {
    return inTransaction(this.#pool, async (client) => {
      const run = await this.#lockRun(client, failed.runId);
      await this.#checkDispatched(client, run, failed.step);
      const first = await this.#recordOutcome(client, failed.runId, failed.step, 'failed', failed, messageId);
      if (first.outcome !== 'failed') {
        return { kind: 'ignore', why: `step ${failed.step} already finished; this job.failed is ignored` };
      }
      return this.#decide(client, planAfterFailed(run.matched, first.body as JobFailed, this.#context(now)));
    });
  }

  /**
   * Publishes a recorded dispatch unless it was published already: locks its row (waiting for whoever holds
   * it, or, with `skipLocked`, giving up), runs `publish`, marks the row dispatched and commits. A crash
   * before the commit releases the lock and leaves the row to be published again, with the same message id.
   * Resolves true when this call published it.
   */
  async publishPending(
    messageId: string,
    publish: (dispatch: PendingDispatch) => Promise<void>,
    opts: { skipLocked: boolean },
  ): Promise<boolean> {
    return inTransaction(this.#pool, async (client) => {
      const { rows } = await client.query<DispatchRow>(
        `SELECT message_id, run_id, step, routing_key, priority, state, body FROM ${this.#schema}.dispatches
         WHERE message_id = $1 AND state = 'dispatching'
         FOR UPDATE${opts.skipLocked ? ' SKIP LOCKED' : ''}`,
        [messageId],
      );
      const row = rows[0];
      if (!row) return false;
      await publish({ ...toStored(row), body: row.body });
      await client.query(
        `UPDATE ${this.#schema}.dispatches SET state = 'dispatched', published_at = now() WHERE message_id = $1`,
        [messageId],
      );
      return true;
    });
  }

  /** Message ids of dispatches recorded but not yet confirmed published, oldest first. */
  async pendingDispatches(limit: number): Promise<string[]> {
    const { rows } = await this.#pool.query<{ message_id: string }>(
      `SELECT message_id FROM ${this.#schema}.dispatches WHERE state = 'dispatching'
       ORDER BY created_at LIMIT $1`,
      [limit],
    );
    return rows.map((row) => row.message_id);
  }

  /** Runs by status. */
  async runCounts(): Promise<RunCounts> {
    const { rows } = await this.#pool.query<{ status: keyof RunCounts; count: string }>(
      `SELECT status, count(*) AS count FROM ${this.#schema}.runs GROUP BY status`,
    );
    const counts: RunCounts = { running: 0, finished: 0, failed: 0 };
    for (const row of rows) counts[row.status] = Number(row.count);
    return counts;
  }

  /** Readiness: the database answers. */
  async check(): Promise<void> {
    await this.#pool.query('SELECT 1');
  }

  #context(now: Date): PlanContext {
    return { runsBucket: this.#runsBucket, now };
  }

  async #lockRun(client: PoolClient, runId: string): Promise<RunRow> {
    const { rows } = await client.query<RunRow>(
      `SELECT matched, status FROM ${this.#schema}.runs WHERE run_id = $1 FOR UPDATE`,
      [runId],
    );
    const run = rows[0];
    if (!run) throw new PermanentError(`unknown run ${runId}: no flow.matched was recorded for it`);
    return run;
  }

  /** A step outcome must answer a job this scheduler dispatched. */
  async #checkDispatched(client: PoolClient, run: RunRow, step: number): Promise<void> {
    if (step >= run.matched.flow.models.length) {
      throw new PermanentError(
        `run ${run.matched.runId} has ${run.matched.flow.models.length} models; there is no step ${step}`,
      );
    }
    const { rowCount } = await client.query(
      `SELECT 1 FROM ${this.#schema}.dispatches WHERE message_id = $1`,
      [jobMessageId(run.matched.runId, step)],
    );
    if (rowCount === 0) {
      throw new PermanentError(`run ${run.matched.runId}: step ${step} was never dispatched`);
    }
  }

  /** Records the outcome of a step unless one is recorded; returns the one that counts (the first). */
  async #recordOutcome(
    client: PoolClient,
    runId: string,
    step: number,
    outcome: 'finished' | 'failed',
    body: JobFinished | JobFailed,
    messageId: string,
  ): Promise<{ outcome: 'finished' | 'failed'; body: unknown }> {
    await client.query(
      `INSERT INTO ${this.#schema}.step_outcomes (run_id, step, outcome, body, message_id)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id, step) DO NOTHING`,
      [runId, step, outcome, JSON.stringify(body), messageId],
    );
    const { rows } = await client.query<{ outcome: 'finished' | 'failed'; body: unknown }>(
      `SELECT outcome, body FROM ${this.#schema}.step_outcomes WHERE run_id = $1 AND step = $2`,
      [runId, step],
    );
    const first = rows[0];
    if (!first) throw new Error(`step outcome of run ${runId} step ${step} vanished`);
    return first;
  }

  /** Records `dispatch` unless a dispatch with its message id exists; returns the recorded one. */
  async #decide(client: PoolClient, dispatch: Dispatch): Promise<Decision> {
    const valid = validateMessage(dispatch.routingKey, dispatch.body);
    if (!valid.ok) throw new PermanentError(`planned ${dispatch.routingKey} is invalid: ${valid.error}`);
    const inserted = await client.query<DispatchRow>(
      `INSERT INTO ${this.#schema}.dispatches (message_id, run_id, step, routing_key, priority, body, state)
       VALUES ($1, $2, $3, $4, $5, $6, 'dispatching') ON CONFLICT (message_id) DO NOTHING
       RETURNING message_id, run_id, step, routing_key, priority, state`,
      [
        dispatch.messageId,
        dispatch.runId,
        dispatch.step ?? null,
        dispatch.routingKey,
        dispatch.priority,
        JSON.stringify(dispatch.body),
      ],
    );
    const created = inserted.rows[0];
    if (created) {
      await this.#setRunStatus(client, dispatch);
      return { kind: 'dispatch', dispatch: toStored(created), created: true };
    }
    const { rows } = await client.query<DispatchRow>(
      `SELECT message_id, run_id, step, routing_key, priority, state FROM ${this.#schema}.dispatches
       WHERE message_id = $1`,
      [dispatch.messageId],
    );
    const existing = rows[0];
    if (!existing) throw new Error(`dispatch ${dispatch.messageId} vanished`);
    return { kind: 'dispatch', dispatch: toStored(existing), created: false };
  }

  async #setRunStatus(client: PoolClient, dispatch: Dispatch): Promise<void> {
    const status =
      dispatch.routingKey === 'flow.finished'
        ? 'finished'
        : dispatch.routingKey === 'flow.failed'
          ? 'failed'
          : undefined;
    if (status === undefined) return;
    await client.query(`UPDATE ${this.#schema}.runs SET status = $2, updated_at = now() WHERE run_id = $1`, [
      dispatch.runId,
      status,
    ]);
  }
}

function toStored(row: DispatchRow): StoredDispatch {
  return {
    messageId: row.message_id,
    runId: row.run_id,
    step: row.step ?? undefined,
    routingKey: row.routing_key,
    priority: row.priority,
    state: row.state,
  };
}

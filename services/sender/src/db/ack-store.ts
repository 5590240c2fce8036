import { quoteIdentifier, type Pool } from '@dicomflow/database';

/** One acknowledged instance. */
export interface Ack {
  readonly member: string;
  readonly sopInstanceUid: string;
  readonly status: number;
}

/** Which instances each target acknowledged per run, durably (PostgreSQL). */
export class AckStore {
  readonly #pool: Pool;
  readonly #table: string;

  constructor(pool: Pool, schema: string) {
    this.#pool = pool;
    this.#table = `${quoteIdentifier(schema)}.acks`;
  }

  /** Tar members `target` already acknowledged for `runId`. */
  async acked(runId: string, target: string): Promise<Set<string>> {
    const { rows } = await this.#pool.query<{ member: string }>(
      `SELECT member FROM ${this.#table} WHERE run_id = $1 AND target = $2`,
      [runId, target],
    );
    return new Set(rows.map((row) => row.member));
  }

  /** Records acknowledgements (a repeated one is kept as first recorded). */
  async record(runId: string, target: string, acks: readonly Ack[]): Promise<void> {
    if (acks.length === 0) return;
    await this.#pool.query(
      `INSERT INTO ${this.#table} (run_id, target, member, sop_instance_uid, status)
       SELECT $1, $2, m, u, s FROM unnest($3::text[], $4::text[], $5::int[]) AS t(m, u, s)
       ON CONFLICT DO NOTHING`,
      [
        runId,
        target,
        acks.map((a) => a.member),
        acks.map((a) => a.sopInstanceUid),
        acks.map((a) => a.status),
      ],
    );
  }

  /**
   * The SOP Instance UIDs `target` acknowledged for `runId`, page by page (keyset on the member name), so
   * that a run of 100 000 instances is never held in memory at once.
   */
  async *ackedUids(
    runId: string,
    target: string,
    pageSize = 5000,
  ): AsyncGenerator<string[], void, undefined> {
    let after = '';
    for (;;) {
      const { rows } = await this.#pool.query<{ member: string; sop_instance_uid: string }>(
        `SELECT member, sop_instance_uid FROM ${this.#table}
         WHERE run_id = $1 AND target = $2 AND member > $3 ORDER BY member LIMIT $4`,
        [runId, target, after, pageSize],
      );
      if (rows.length === 0) return;
      yield rows.map((row) => row.sop_instance_uid);
      after = rows[rows.length - 1]?.member ?? after;
      if (rows.length < pageSize) return;
    }
  }

  /** Readiness: the database answers. */
  async check(): Promise<void> {
    await this.#pool.query('SELECT 1');
  }
}

/** How many acknowledgements may wait for the database before sending waits for them. */
export const MAX_UNRECORDED_ACKS = 16;

/**
 * Collects acknowledgements while instances are being sent and writes them in batches: one INSERT is in
 * flight at a time and takes everything acknowledged meanwhile, so sending never waits for the database
 * per instance. It does wait once `maxUnrecorded` acks are not yet durable: a sender killed then sends
 * again at most that many instances the destination already has, however slow the database is.
 * `flush()` resolves once every ack added so far is durable.
 */
export class AckBatcher {
  readonly #store: AckStore;
  readonly #runId: string;
  readonly #target: string;
  readonly #maxUnrecorded: number;
  #queued: Ack[] = [];
  /** Added and not yet written (queued or in the INSERT in flight). */
  #unrecorded = 0;
  #writing: Promise<void> = Promise.resolve();
  #error: Error | undefined;

  constructor(store: AckStore, runId: string, target: string, maxUnrecorded = MAX_UNRECORDED_ACKS) {
    this.#store = store;
    this.#runId = runId;
    this.#target = target;
    this.#maxUnrecorded = Math.max(1, maxUnrecorded);
  }

  /** Adds an ack; resolves at once unless `maxUnrecorded` acks wait, then once fewer do. */
  async add(ack: Ack): Promise<void> {
    this.#queued.push(ack);
    this.#unrecorded++;
    if (this.#queued.length === 1) this.#writing = this.#writing.then(() => this.#writeQueued());
    // A failed write is reported by flush(); sending goes on meanwhile, as it would without the database.
    while (this.#unrecorded >= this.#maxUnrecorded && this.#error === undefined) await this.#writing;
  }

  /** Acks added and not yet durable. */
  get unrecorded(): number {
    return this.#unrecorded;
  }

  /** Resolves when every added ack is stored; rejects with the first write failure. */
  async flush(): Promise<void> {
    await this.#writing;
    if (this.#queued.length > 0) await this.#writeQueued();
    if (this.#error !== undefined) throw this.#error;
  }

  async #writeQueued(): Promise<void> {
    const batch = this.#queued;
    this.#queued = [];
    if (batch.length === 0) return;
    try {
      await this.#store.record(this.#runId, this.#target, batch);
    } catch (err) {
      this.#error ??= err instanceof Error ? err : new Error(String(err));
    } finally {
      this.#unrecorded -= batch.length;
    }
  }
}

import { quoteIdentifier, type Pool } from '@dicomflow/database';

/** Which runs the sender is delivering, and which deliveries are over (for the janitor). */
export class DeliveryStore {
  readonly #pool: Pool;
  readonly #table: string;

  constructor(pool: Pool, schema: string) {
    this.#pool = pool;
    this.#table = `${quoteIdentifier(schema)}.deliveries`;
  }

  /**
   * Runs `work` (one delivery of the run) as `sending`; marks the run `done` once `work` resolves (its
   * outcome is published). A delivery that throws stays `sending`: the message is retried, or dead-lettered
   * and maybe replayed, and either needs the run's outputs and acknowledgements.
   */
  async track(runId: string, outputBucket: string, work: () => Promise<void>): Promise<void> {
    await this.#pool.query(
      `INSERT INTO ${this.#table} (run_id, output_bucket, state) VALUES ($1, $2, 'sending')
       ON CONFLICT (run_id) DO UPDATE SET state = 'sending', output_bucket = excluded.output_bucket,
         updated_at = now(), outputs_removed_at = NULL`,
      [runId, outputBucket],
    );
    await work();
    await this.#pool.query(`UPDATE ${this.#table} SET state = 'done', updated_at = now() WHERE run_id = $1`, [
      runId,
    ]);
  }
}

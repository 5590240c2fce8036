import pg from 'pg';
import { type ConfigOf, postgresConfigFrom } from '@dicomflow/config';
import type { Logger } from '@dicomflow/runtime';

/** A pool of PostgreSQL connections for the scheduler's run state. */
export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/** Opens (lazily) a pool for the database in `config`; idle connection errors are logged, not thrown. */
export function createPool(config: ConfigOf<'scheduler'>, logger: Logger): Pool {
  const pool = new pg.Pool({
    ...postgresConfigFrom(config),
    application_name: `dicomflow-scheduler-${process.pid}`,
    // Every handler (3 queues x prefetch 4) may hold one connection while publishing, plus the sweep.
    max: 16,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server went away emits here; without a listener it would crash the process.
  pool.on('error', (err) => {
    logger.warn({ err: err.message }, 'idle PostgreSQL connection failed');
  });
  return pool;
}

/**
 * Runs `work` in one transaction on one connection: COMMIT when it resolves, ROLLBACK when it throws. A
 * connection that failed during the transaction is discarded instead of going back to the pool.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

/** `name` as a quoted SQL identifier (names come from configuration, checked there to be plain). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

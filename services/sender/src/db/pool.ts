import pg from 'pg';
import { postgresConfigFrom, type SenderConfig } from '@dicomflow/config';
import type { Logger } from '@dicomflow/runtime';

/** A pool of PostgreSQL connections for the sender's acknowledgements. */
export type Pool = pg.Pool;

/** Opens (lazily) a pool for the database in `config`; idle connection errors are logged, not thrown. */
export function createPool(config: SenderConfig, logger: Logger): Pool {
  const pool = new pg.Pool({
    ...postgresConfigFrom(config),
    application_name: `dicomflow-sender-${process.pid}`,
    max: 8,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server went away emits here; without a listener it would crash the process.
  pool.on('error', (err) => {
    logger.warn({ err: err.message }, 'idle PostgreSQL connection failed');
  });
  return pool;
}

/** `name` as a quoted SQL identifier (names come from configuration, checked there to be plain). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

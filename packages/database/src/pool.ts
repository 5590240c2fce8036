import pg from 'pg';
import { readTlsFiles, type Logger, type TlsFiles, type TlsMaterial } from '@dicomflow/runtime';

/** A pool of PostgreSQL connections. */
export type Pool = pg.Pool;
/** One connection taken from a {@link Pool}. */
export type PoolClient = pg.PoolClient;

/** Where the database is (shaped like node-postgres' client options; `postgresConfigFrom` gives it). */
export interface PoolConnection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** SSL with the server certificate verified (verify-full) when present; PEM file paths. */
  readonly ssl?: TlsFiles;
}

/** The `ssl` option of node-postgres and of TypeORM's postgres driver, as {@link postgresSsl} makes it. */
export type PostgresSsl = TlsMaterial & { readonly rejectUnauthorized: true };

/**
 * node-postgres' `ssl` option for `connection` (also TypeORM's, which hands it on): undefined for a plain
 * connection; otherwise the PEM files read now (a missing or wrong file throws a PermanentError naming
 * it) and the certificate checked against the CA and the host name, as libpq's sslmode=verify-full does.
 * The one place where DB_SSL_* become connection options.
 */
export function postgresSsl(connection: Pick<PoolConnection, 'ssl'>): PostgresSsl | undefined {
  if (!connection.ssl) return undefined;
  return { ...readTlsFiles(connection.ssl, 'PostgreSQL'), rejectUnauthorized: true };
}

/** How one service uses its pool. */
export interface PoolOptions {
  /** Shown in `pg_stat_activity` (the process id is appended). */
  readonly applicationName: string;
  /** Most connections open at once. */
  readonly max: number;
}

/**
 * Opens (lazily) a pool for `connection`; idle connection errors are logged, not thrown, so a database
 * restart never crashes the service.
 */
export function createPool(connection: PoolConnection, options: PoolOptions, logger: Logger): Pool {
  const { ssl: _files, ...address } = connection;
  const ssl = postgresSsl(connection);
  const pool = new pg.Pool({
    ...address,
    ...(ssl === undefined ? {} : { ssl }),
    application_name: `${options.applicationName}-${process.pid}`,
    max: options.max,
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

/**
 * Runs `work` while this process holds the session advisory lock `key`, taken without waiting: when
 * another session holds it, resolves `{ locked: false }` at once and `work` does not run. Used where one
 * replica at a time is enough (a janitor pass) or where the holder is busy with the same thing (a run
 * being delivered).
 */
export async function withTryLock<T>(
  pool: Pool,
  key: string,
  work: (client: PoolClient) => Promise<T>,
): Promise<{ locked: true; result: T } | { locked: false }> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock(hashtext($1)) AS locked',
      [key],
    );
    if (rows[0]?.locked !== true) return { locked: false };
    try {
      return { locked: true, result: await work(client) };
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch((err: unknown) => {
        // The session is unusable: dropping the connection releases the lock anyway.
        broken = err instanceof Error ? err : new Error(String(err));
      });
    }
  } finally {
    client.release(broken);
  }
}

/** `name` as a quoted SQL identifier (names come from configuration, checked there to be plain). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

import type { Logger } from '@dicomflow/runtime';
import { quoteIdentifier, type Pool } from './pool.js';

/**
 * The sender's tables, one SQL script per version, applied in order and never edited once released.
 * `$schema` stands for the quoted schema name.
 */
const MIGRATIONS: readonly string[] = [
  `
  -- One row per instance a target acknowledged (success or warning) for a run: a redelivered
  -- flow.finished sends only what has no row here.
  CREATE TABLE $schema.acks (
    run_id uuid NOT NULL,
    target text NOT NULL,
    member text NOT NULL,
    sop_instance_uid text NOT NULL,
    status integer NOT NULL,
    acked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, target, member)
  );
  CREATE INDEX acks_acked_at ON $schema.acks (acked_at);
  `,
];

/**
 * Creates the schema and brings its tables to the latest version. Safe to run from several replicas at
 * once: they take turns on an advisory lock, and each version is applied once.
 */
export async function migrate(pool: Pool, schema: string, logger: Logger): Promise<void> {
  const quoted = quoteIdentifier(schema);
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`dicomflow-sender-migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${quoted}.migrations (
         version integer PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await client.query<{ version: number }>(
      `SELECT coalesce(max(version), 0) AS version FROM ${quoted}.migrations`,
    );
    const current = rows[0]?.version ?? 0;
    for (let version = current + 1; version <= MIGRATIONS.length; version++) {
      await client.query((MIGRATIONS[version - 1] ?? '').replaceAll('$schema', quoted));
      await client.query(`INSERT INTO ${quoted}.migrations (version) VALUES ($1)`, [version]);
      logger.info({ schema, version }, 'database migration applied');
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

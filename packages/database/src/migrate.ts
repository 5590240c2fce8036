import type { Logger } from '@dicomflow/runtime';
import { inTransaction, quoteIdentifier, type Pool, type PoolClient } from './pool.js';

/** What {@link migrate} brings up to date. */
export interface MigrateOptions {
  /** The schema holding the tables (created when missing). */
  readonly schema: string;
  /** The owner (e.g. `scheduler`): names the advisory lock, so owners never wait for each other. */
  readonly name: string;
  /**
   * One SQL script per version (version n is `migrations[n - 1]`), applied in order and never edited once
   * released: a change is a new version. `$schema` stands for the quoted schema name.
   */
  readonly migrations: readonly string[];
  readonly logger: Logger;
  /**
   * Takes over what an earlier migration mechanism recorded in the schema, before anything else is read.
   * Resolves with the version that history amounts to (0: none); those versions are then recorded as
   * applied without running them.
   */
  readonly adopt?: (client: PoolClient, quotedSchema: string) => Promise<number>;
}

/**
 * Creates the schema and brings its tables to the latest version, all in one transaction: a failing
 * version leaves the schema as it was. Safe to run from several replicas at once: they take turns on an
 * advisory lock, and each version is applied once (recorded in `<schema>.migrations`). Resolves with the
 * versions this call applied.
 */
export async function migrate(pool: Pool, options: MigrateOptions): Promise<number[]> {
  const { schema, name, migrations, logger } = options;
  const quoted = quoteIdentifier(schema);
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`dicomflow-${name}-migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
    const adopted = options.adopt ? await options.adopt(client, quoted) : 0;
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${quoted}.migrations (
         version integer PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    if (adopted > 0) {
      await client.query(
        `INSERT INTO ${quoted}.migrations (version) SELECT generate_series(1, $1::integer)
         ON CONFLICT DO NOTHING`,
        [adopted],
      );
    }
    const { rows } = await client.query<{ version: number }>(
      `SELECT coalesce(max(version), 0) AS version FROM ${quoted}.migrations`,
    );
    const current = rows[0]?.version ?? 0;
    const applied: number[] = [];
    for (let version = current + 1; version <= migrations.length; version++) {
      const script = migrations[version - 1] ?? '';
      await client.query(script.replaceAll('$schema', quoted));
      await client.query(`INSERT INTO ${quoted}.migrations (version) VALUES ($1)`, [version]);
      logger.info({ schema, version }, 'database migration applied');
      applied.push(version);
    }
    return applied;
  });
}

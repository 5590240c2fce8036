import { DataSource } from 'typeorm';
import { postgresConfigFrom } from '@dicomflow/config';
import type { Logger } from '@dicomflow/runtime';
import { TRACKER_ENTITIES } from './entities.js';
import { TRACKER_MIGRATIONS } from './migrations.js';

/** Where the tracker's database is. */
export interface TrackerDbConfig {
  readonly DB_HOST: string;
  readonly DB_PORT: number;
  readonly DB_NAME: string;
  readonly DB_USER: string;
  readonly DB_PASS: string;
  readonly TRACKER_DB_SCHEMA: string;
}

/** The connection settings in TypeORM's names (`username` where node-postgres says `user`). */
function postgresOptions(config: TrackerDbConfig): {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
} {
  const { user, ...rest } = postgresConfigFrom(config);
  return { ...rest, username: user };
}

/**
 * The tracker's TypeORM data source (not yet connected). Tables come only from migrations: `synchronize` is
 * off, so the schema a release runs on is the one its migrations built.
 */
export function createDataSource(config: TrackerDbConfig): DataSource {
  return new DataSource({
    type: 'postgres',
    ...postgresOptions(config),
    schema: config.TRACKER_DB_SCHEMA,
    entities: TRACKER_ENTITIES,
    migrations: TRACKER_MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    logging: false,
    applicationName: `dicomflow-flow-tracker-${process.pid}`,
    extra: { max: 10, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000 },
  });
}

/**
 * Creates the schema and applies pending migrations in one transaction. Replicas starting together take
 * turns on an advisory lock held by a separate connection, so each migration runs once.
 */
export async function migrate(dataSource: DataSource, schema: string, logger: Logger): Promise<void> {
  const lock = dataSource.createQueryRunner();
  try {
    await lock.query('SELECT pg_advisory_lock(hashtext($1))', [`dicomflow-tracker-migrate:${schema}`]);
    await dataSource.query(`CREATE SCHEMA IF NOT EXISTS "${schema.replaceAll('"', '""')}"`);
    const applied = await dataSource.runMigrations({ transaction: 'all' });
    for (const migration of applied) logger.info({ schema, migration: migration.name }, 'migration applied');
  } finally {
    await lock
      .query('SELECT pg_advisory_unlock(hashtext($1))', [`dicomflow-tracker-migrate:${schema}`])
      .catch(() => undefined);
    await lock.release();
  }
}

import { DataSource } from 'typeorm';
import { postgresConfigFrom, type PostgresKeys } from '@dicomflow/config';
import {
  createPool,
  migrate as runMigrations,
  postgresSsl,
  type Pool,
  type PostgresSsl,
} from '@dicomflow/database';
import type { Logger } from '@dicomflow/runtime';
import { TRACKER_ENTITIES } from './entities.js';
import { adoptTypeormHistory, TRACKER_MIGRATIONS } from './migrations.js';

/** Where the tracker's database is. */
export interface TrackerDbConfig extends PostgresKeys {
  readonly TRACKER_DB_SCHEMA: string;
}

/** The connection settings in TypeORM's names (`username` where node-postgres says `user`). */
function postgresOptions(config: TrackerDbConfig): {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
  ssl?: PostgresSsl;
} {
  const connection = postgresConfigFrom(config);
  const { user, ssl: _files, ...rest } = connection;
  const ssl = postgresSsl(connection);
  return { ...rest, username: user, ...(ssl === undefined ? {} : { ssl }) };
}

/**
 * The tracker's TypeORM data source (not yet connected). Tables come only from the migrations of
 * {@link migrate} (the runner every service shares): TypeORM neither synchronizes nor migrates, so the
 * schema a release runs on is the one its migrations built.
 */
export function createDataSource(config: TrackerDbConfig): DataSource {
  return new DataSource({
    type: 'postgres',
    ...postgresOptions(config),
    schema: config.TRACKER_DB_SCHEMA,
    entities: TRACKER_ENTITIES,
    migrationsRun: false,
    synchronize: false,
    logging: false,
    applicationName: `dicomflow-flow-tracker-${process.pid}`,
    extra: { max: 10, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000 },
  });
}

/**
 * A plain PostgreSQL pool beside the data source, for the migrations and the janitor (set-based statements
 * that need no entities).
 */
export function createTrackerPool(config: TrackerDbConfig, logger: Logger): Pool {
  return createPool(
    postgresConfigFrom(config),
    { applicationName: 'dicomflow-flow-tracker-admin', max: 3 },
    logger,
  );
}

/**
 * Creates the schema and brings the tracker's tables to the latest version, in one transaction; a schema
 * TypeORM migrated before is taken over. Replicas starting together take turns on an advisory lock, so
 * each version runs once.
 */
export async function migrate(pool: Pool, schema: string, logger: Logger): Promise<void> {
  await runMigrations(pool, {
    schema,
    name: 'tracker',
    migrations: TRACKER_MIGRATIONS,
    logger,
    adopt: adoptTypeormHistory,
  });
}

export { createPool, inTransaction, postgresSsl, quoteIdentifier, withTryLock } from './pool.js';
export type { Pool, PoolClient, PoolConnection, PoolOptions, PostgresSsl } from './pool.js';
export { migrate } from './migrate.js';
export type { MigrateOptions } from './migrate.js';

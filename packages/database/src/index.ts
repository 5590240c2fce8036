export { createPool, inTransaction, quoteIdentifier, withTryLock } from './pool.js';
export type { Pool, PoolClient, PoolConnection, PoolOptions } from './pool.js';
export { migrate } from './migrate.js';
export type { MigrateOptions } from './migrate.js';

import { type ConfigOf, postgresConfigFrom } from '@dicomflow/config';
import { createPool as createDatabasePool, type Pool } from '@dicomflow/database';
import type { Logger } from '@dicomflow/runtime';

/** Opens (lazily) the pool of the scheduler's run state; idle connection errors are logged, not thrown. */
export function createPool(config: ConfigOf<'scheduler'>, logger: Logger): Pool {
  // Every handler (3 queues x prefetch 4) may hold one connection while publishing, plus the sweep.
  return createDatabasePool(
    postgresConfigFrom(config),
    { applicationName: 'dicomflow-scheduler', max: 16 },
    logger,
  );
}

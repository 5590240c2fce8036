import { postgresConfigFrom, type SenderConfig } from '@dicomflow/config';
import { createPool as createDatabasePool, type Pool } from '@dicomflow/database';
import type { Logger } from '@dicomflow/runtime';

export type { Pool };

/** Opens (lazily) the pool of the sender's deliveries and acknowledgements; idle connection errors are logged. */
export function createPool(config: SenderConfig, logger: Logger): Pool {
  return createDatabasePool(
    postgresConfigFrom(config),
    { applicationName: 'dicomflow-sender', max: 8 },
    logger,
  );
}

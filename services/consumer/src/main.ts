import { loadConfig } from '@dicomflow/config';
import { createLogger, runService } from '@dicomflow/runtime';
import { withConsumerId } from './docker/consumer-id.js';
import { createService } from './service.js';

const config = await withConsumerId(loadConfig('consumer'));
const logger = createLogger({ service: 'consumer', level: config.LOG_LEVEL });
await runService({ name: 'consumer', logger, service: createService(config, logger) });

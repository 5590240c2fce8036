import { loadConfig } from '@dicomflow/config';
import { createLogger, runService } from '@dicomflow/runtime';
import { createService } from './service.js';

const config = loadConfig('scheduler');
const logger = createLogger({ service: 'scheduler', level: config.LOG_LEVEL });
await runService({ name: 'scheduler', logger, service: createService(config, logger) });

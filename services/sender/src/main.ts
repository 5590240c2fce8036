import { loadConfig } from '@dicomflow/config';
import { createLogger, runService } from '@dicomflow/runtime';
import { createService } from './service.js';

const config = loadConfig('sender');
const logger = createLogger({ service: 'sender', level: config.LOG_LEVEL });
await runService({ name: 'sender', logger, service: createService(config, logger) });

import { loadConfig } from '@dicomflow/config';
import { createLogger, runService } from '@dicomflow/runtime';
import { createService } from './service.js';

const config = loadConfig('static-storage');
const logger = createLogger({ service: 'static-storage', level: config.LOG_LEVEL });
await runService({ name: 'static-storage', logger, service: createService(config, logger) });

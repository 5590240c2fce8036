import { loadConfig } from '@dicomflow/config';
import { createLogger, runService } from '@dicomflow/runtime';
import { createService } from './service.js';

const config = loadConfig('storescp');
const logger = createLogger({ service: 'storescp', level: config.LOG_LEVEL });
await runService({ name: 'storescp', logger, service: createService(config, logger) });

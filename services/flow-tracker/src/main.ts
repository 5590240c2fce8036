import { loadConfig } from '@dicomflow/config';
import { createLogger, runService } from '@dicomflow/runtime';
import { createService } from './service.js';

const config = loadConfig('flow-tracker');
const logger = createLogger({ service: 'flow-tracker', level: config.LOG_LEVEL });
await runService({ name: 'flow-tracker', logger, service: createService(config, logger) });

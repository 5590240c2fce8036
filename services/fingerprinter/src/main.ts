import { loadConfig } from '@dicomflow/config';
import { createLogger, runService } from '@dicomflow/runtime';
import { createService } from './service.js';

const config = loadConfig('fingerprinter');
const logger = createLogger({ service: 'fingerprinter', level: config.LOG_LEVEL });
await runService({ name: 'fingerprinter', logger, service: createService(config, logger) });

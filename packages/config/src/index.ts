export { ConfigError } from './config-error.js';
export { loadConfig, DEFAULT_CONF_DIR } from './load-config.js';
export type { LoadConfigOptions } from './load-config.js';
export { describeConfig } from './describe-config.js';
export {
  CONFIG_REFERENCE_END,
  CONFIG_REFERENCE_START,
  renderConfigReference,
  withConfigReference,
} from './config-reference.js';
export type { ConfigKeyDescription } from './describe-config.js';
export { brokerConfigFrom, exchangesFrom, postgresConfigFrom, storageConfigFrom } from './client-options.js';
export type {
  BrokerConnectionConfig,
  PostgresConnectionConfig,
  PostgresKeys,
  TlsFileOptions,
  StorageConnectionConfig,
} from './client-options.js';
export { SERVICE_NAMES } from './services.js';
export type {
  ServiceName,
  CommonConfig,
  ConfigOf,
  StorescpConfig,
  FingerprinterConfig,
  SchedulerConfig,
  ConsumerConfig,
  SenderConfig,
  StaticStorageConfig,
  FlowTrackerConfig,
} from './services.js';
export { LOG_LEVELS, HTTP_PORT_DEFAULTS } from './keys-common.js';

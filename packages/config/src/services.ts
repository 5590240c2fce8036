import type { KeyGroup, KeySpec, ValuesOf } from './key-spec.js';
import { commonKeys, HTTP_PORT_DEFAULTS, httpPortKey } from './keys-common.js';
import {
  consumerKeys,
  fingerprinterKeys,
  flowTrackerKeys,
  staticStorageKeys,
  storescpKeys,
} from './keys-services.js';
import { schedulerKeys } from './keys-scheduler.js';
import { retentionKeysOf } from './keys-retention.js';
import { senderKeys } from './keys-sender.js';
import { stowKeys } from './keys-stow.js';

/** The services of DicomFlow; each reads the common keys plus its own. */
export type ServiceName =
  'storescp' | 'fingerprinter' | 'scheduler' | 'consumer' | 'sender' | 'static-storage' | 'flow-tracker';

/** Every service name, in data-path order. */
export const SERVICE_NAMES: readonly ServiceName[] = [
  'storescp',
  'fingerprinter',
  'scheduler',
  'consumer',
  'sender',
  'static-storage',
  'flow-tracker',
];

function withCommon<G extends KeyGroup>(
  service: ServiceName,
  own: G,
): typeof commonKeys & { HTTP_PORT: KeySpec<number> } & G {
  return { ...commonKeys, HTTP_PORT: httpPortKey(HTTP_PORT_DEFAULTS[service]), ...own };
}

/**
 * The schema of each service. This package owns all of them so that a conf.d folder shared by all
 * services can be checked for keys that no service knows.
 */
export const SERVICE_KEYS = {
  storescp: withCommon('storescp', {
    ...storescpKeys,
    ...stowKeys,
    ...retentionKeysOf('RETENTION_SPOOL'),
  }),
  fingerprinter: withCommon('fingerprinter', fingerprinterKeys),
  scheduler: withCommon('scheduler', {
    ...schedulerKeys,
    ...retentionKeysOf('RETENTION_RECEIPTS', 'RETENTION_RUN_OUTPUTS', 'RETENTION_ROWS', 'RETENTION_UPLOADS'),
  }),
  consumer: withCommon('consumer', consumerKeys),
  sender: withCommon('sender', {
    ...senderKeys,
    ...retentionKeysOf('RETENTION_RUN_OUTPUTS', 'RETENTION_ROWS'),
  }),
  'static-storage': withCommon('static-storage', {
    ...staticStorageKeys,
    ...retentionKeysOf('RETENTION_UPLOADS'),
  }),
  'flow-tracker': withCommon('flow-tracker', {
    ...flowTrackerKeys,
    ...retentionKeysOf('RETENTION_EVENTS', 'RETENTION_RUNS'),
  }),
} satisfies Record<ServiceName, KeyGroup>;

/** Keys every service reads. */
export type CommonConfig = ValuesOf<typeof commonKeys & { HTTP_PORT: KeySpec<number> }>;
/** Configuration of a given service: the common keys plus its own. */
export type ConfigOf<S extends ServiceName> = ValuesOf<(typeof SERVICE_KEYS)[S]>;

export type StorescpConfig = ConfigOf<'storescp'>;
export type FingerprinterConfig = ConfigOf<'fingerprinter'>;
export type SchedulerConfig = ConfigOf<'scheduler'>;
export type ConsumerConfig = ConfigOf<'consumer'>;
export type SenderConfig = ConfigOf<'sender'>;
export type StaticStorageConfig = ConfigOf<'static-storage'>;
export type FlowTrackerConfig = ConfigOf<'flow-tracker'>;

/** The keys of one service. */
export function keysOf(service: ServiceName): KeyGroup {
  return SERVICE_KEYS[service];
}

/** Every key some service knows. */
export const ALL_KEYS: ReadonlySet<string> = new Set(
  SERVICE_NAMES.flatMap((service) => Object.keys(SERVICE_KEYS[service])),
);

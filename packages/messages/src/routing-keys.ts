/** Version of the message bodies' schemas; sent as the `schema-version` header of every message. */
export const SCHEMA_VERSION = '1';

/** Every routing key on the `dicomflow` exchange (DESIGN.md "Messaging"). */
export const ROUTING_KEYS = [
  'study.received',
  'flow.matched',
  'job.cpu',
  'job.gpu',
  'job.started',
  'job.finished',
  'job.failed',
  'flow.finished',
  'flow.failed',
  'flow.rerun',
  'send.started',
  'send.retrying',
  'send.finished',
  'send.failed',
] as const;

/** One of {@link ROUTING_KEYS}. */
export type RoutingKey = (typeof ROUTING_KEYS)[number];

const routingKeySet: ReadonlySet<string> = new Set(ROUTING_KEYS);

/** True when `key` is one of {@link ROUTING_KEYS}. */
export function isRoutingKey(key: string): key is RoutingKey {
  return routingKeySet.has(key);
}

import type { Static, TSchema } from '@sinclair/typebox';
import type { RoutingKey } from './routing-keys.js';
import { FlowMatched } from './flow-matched.js';
import { FlowFailed, FlowFinished } from './flow-outcome.js';
import { Job, JobFailed, JobFinished, JobStarted } from './jobs.js';
import { FlowRerun } from './recovery.js';
import { SendFailed, SendFinished, SendRetrying, SendStarted } from './send-outcome.js';
import { StudyReceived } from './study-received.js';

/** The body schema of every routing key. */
export const MESSAGE_SCHEMAS = {
  'study.received': StudyReceived,
  'flow.matched': FlowMatched,
  'job.cpu': Job,
  'job.gpu': Job,
  'job.started': JobStarted,
  'job.finished': JobFinished,
  'job.failed': JobFailed,
  'flow.finished': FlowFinished,
  'flow.failed': FlowFailed,
  'flow.rerun': FlowRerun,
  'send.started': SendStarted,
  'send.retrying': SendRetrying,
  'send.finished': SendFinished,
  'send.failed': SendFailed,
} as const satisfies Record<RoutingKey, TSchema>;

/** A routing key whose body has a schema in {@link MESSAGE_SCHEMAS}. */
export type SchemaRoutingKey = keyof typeof MESSAGE_SCHEMAS;

/** The body type of the messages published under routing key `K`. */
export type MessageOf<K extends SchemaRoutingKey> = Static<(typeof MESSAGE_SCHEMAS)[K]>;

/** True when `key` has a body schema in {@link MESSAGE_SCHEMAS}. */
export function isSchemaRoutingKey(key: string): key is SchemaRoutingKey {
  return Object.hasOwn(MESSAGE_SCHEMAS, key);
}

/**
 * The JSON Schema (draft 2020-12 compatible) of every message body, keyed by routing key, as plain JSON
 * objects ready to be written to files for editors and other languages.
 */
export function messageJsonSchemas(): Record<string, object> {
  const out: Record<string, object> = {};
  for (const [key, schema] of Object.entries(MESSAGE_SCHEMAS)) {
    out[key] = { $id: `dicomflow:message:${key}`, title: key, ...toPlainJson(schema) };
  }
  return out;
}

/** Drops TypeBox's symbol keys by a JSON round trip. */
function toPlainJson(schema: TSchema): object {
  return JSON.parse(JSON.stringify(schema)) as object;
}

import type { Message } from 'amqplib';
import {
  isSchemaRoutingKey,
  validateMessage,
  type MessageOf,
  type SchemaRoutingKey,
} from '@dicomflow/messages';
import { errorKind, errorText, isOutage } from './errors.js';
import type { RawPublishProperties } from './publisher.js';

/** Header: which delivery attempt this is (1 = first). */
export const ATTEMPT_HEADER = 'x-dicomflow-attempt';
/** Header: how many retries so far were for an outage (not counted as attempts; they set the delay). */
export const OUTAGE_HEADER = 'x-dicomflow-outage-retries';
/** Header: the last error (retries) or the reason for dead-lettering (dead letters). */
export const ERROR_HEADER = 'x-dicomflow-error';
/** Header of dead letters: why it was dead-lettered, one of {@link DeadLetterReason}. */
export const REASON_HEADER = 'x-dicomflow-reason';
/** Header of dead letters: the work queue it died in (also its routing key on the dead exchange). */
export const QUEUE_HEADER = 'x-dicomflow-queue';
/** Header of dead letters: when it was dead-lettered (ISO 8601). */
export const DEAD_AT_HEADER = 'x-dicomflow-dead-at';

/** Why a message was dead-lettered. */
export type DeadLetterReason = 'unparseable' | 'invalid' | 'permanent' | 'max-attempts';

/** What to do with a delivery once it was handled (or could not be). */
export type Outcome =
  | { readonly action: 'ack'; readonly gone?: string }
  | {
      readonly action: 'retry';
      readonly error: string;
      readonly delayMs: number;
      /** A server the handler needs is down: the attempt is not counted against maxAttempts. */
      readonly outage?: true;
    }
  | { readonly action: 'dead'; readonly reason: DeadLetterReason; readonly error: string };

/** A delivery whose body parsed and matched the schema of its routing key, or why it did not. */
export type DecodedDelivery<K extends SchemaRoutingKey> =
  | { readonly ok: true; readonly routingKey: K; readonly body: MessageOf<K> }
  | { readonly ok: false; readonly routingKey: string; readonly outcome: Outcome & { action: 'dead' } };

// Dead-letter headers end up in tools and UIs; a bounded length keeps huge error texts out of the headers.
const MAX_ERROR_HEADER_LENGTH = 2000;

/**
 * The routing key a message was published with: its `type` property (kept across retries, which travel
 * through the default exchange under the queue's name), else the delivery's routing key.
 */
export function routingKeyOf(message: Pick<Message, 'fields' | 'properties'>): string {
  const type: unknown = message.properties.type;
  return typeof type === 'string' && type !== '' ? type : message.fields.routingKey;
}

/** The attempt number in a message's headers; 1 when absent or malformed. */
export function attemptOf(headers: Record<string, unknown> | undefined): number {
  const value = headers?.[ATTEMPT_HEADER];
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : 1;
}

/** How many earlier retries of a delivery were for an outage (0 when none). */
export function outageRetriesOf(headers: Record<string, unknown> | undefined): number {
  const value = headers?.[OUTAGE_HEADER];
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0;
}

/** Parses a delivery's JSON body and validates it against the schema of its routing key. */
export function decodeDelivery<K extends SchemaRoutingKey>(
  message: Pick<Message, 'content' | 'fields' | 'properties'>,
  bindings: readonly K[],
): DecodedDelivery<K> {
  const routingKey = routingKeyOf(message);
  let data: unknown;
  try {
    data = JSON.parse(message.content.toString('utf8'));
  } catch (err) {
    return dead(routingKey, 'unparseable', `body is not JSON: ${errorText(err)}`);
  }
  if (!isSchemaRoutingKey(routingKey) || !(bindings as readonly string[]).includes(routingKey)) {
    return dead(routingKey, 'invalid', `routing key "${routingKey}" is not one this queue consumes`);
  }
  const result = validateMessage(routingKey, data);
  if (!result.ok) return dead(routingKey, 'invalid', `invalid ${routingKey} message: ${result.error}`);
  // Widened on purpose: TypeScript cannot relate the validated union back to MessageOf<K>.
  const body: unknown = result.value;
  return { ok: true, routingKey: routingKey as K, body: body as MessageOf<K> };
}

/**
 * What a handler's failure means for the message: gone errors are acked, permanent ones dead-lettered at
 * once, everything else retried after `retryDelaysMs[attempt - 1]` (the last delay repeats) until
 * `maxAttempts` attempts failed, then dead-lettered. An outage (isOutage: a server the handler needs is
 * down) is retried without counting as an attempt, however long it lasts, with the delays counted by
 * `outageRetries` (the earlier outage retries of this delivery).
 */
export function outcomeOfFailure(
  err: unknown,
  attempt: number,
  policy: {
    maxAttempts: number;
    retryDelaysMs: readonly number[];
    /** 'count': outages are attempts like any transient failure (default: they are not). */
    outages?: 'count' | 'wait';
  },
  outageRetries = 0,
): Outcome {
  const error = truncate(errorText(err));
  switch (errorKind(err)) {
    case 'gone':
      return { action: 'ack', gone: error };
    case 'permanent':
      return { action: 'dead', reason: 'permanent', error };
    case 'transient': {
      const delays = policy.retryDelaysMs;
      // An outage of the database, S3, the broker or the engine is not the message's failure: it is kept
      // and retried (at the longest delay once the list is used up) for as long as the outage lasts.
      if (policy.outages !== 'count' && isOutage(err)) {
        const delayMs = delays[Math.min(outageRetries + 1, delays.length) - 1] ?? 0;
        return { action: 'retry', error, delayMs, outage: true };
      }
      if (attempt >= policy.maxAttempts) {
        return {
          action: 'dead',
          reason: 'max-attempts',
          error: truncate(`failed ${attempt} times; last: ${error}`),
        };
      }
      const delayMs = delays[Math.min(attempt, delays.length) - 1] ?? 0;
      return { action: 'retry', error, delayMs };
    }
  }
}

/**
 * The properties of a copy of `message` (for a retry or dead-letter queue): the original's identity and
 * priority, persistent, its headers minus RabbitMQ's own dead-lettering history, plus `extraHeaders`.
 */
export function copyProperties(
  message: Pick<Message, 'properties'>,
  extraHeaders: Record<string, unknown>,
): RawPublishProperties {
  const p: Record<string, unknown> = { ...message.properties };
  const headers: Record<string, unknown> = {};
  for (const [name, value] of Object.entries((p.headers ?? {}) as Record<string, unknown>)) {
    if (!/^x-(death|first-death-|last-death-)/.test(name)) headers[name] = value;
  }
  Object.assign(headers, extraHeaders);
  const props: RawPublishProperties = { messageId: stringOr(p.messageId, ''), headers, persistent: true };
  for (const name of ['correlationId', 'type', 'contentType', 'contentEncoding', 'appId'] as const) {
    if (typeof p[name] === 'string') props[name] = p[name];
  }
  if (typeof p.priority === 'number') props.priority = p.priority;
  if (typeof p.timestamp === 'number') props.timestamp = p.timestamp;
  return props;
}

function dead(routingKey: string, reason: DeadLetterReason, error: string): DecodedDelivery<never> {
  return { ok: false, routingKey, outcome: { action: 'dead', reason, error: truncate(error) } };
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function truncate(text: string): string {
  return text.length <= MAX_ERROR_HEADER_LENGTH ? text : `${text.slice(0, MAX_ERROR_HEADER_LENGTH - 1)}…`;
}

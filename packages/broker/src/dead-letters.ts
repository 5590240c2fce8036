import { connect, type ChannelModel, type ConfirmChannel, type GetMessage } from 'amqplib';
import { amqpAddress } from './amqp-address.js';
import type { BrokerConfig } from './connection.js';
import {
  ATTEMPT_HEADER,
  copyProperties,
  DEAD_AT_HEADER,
  ERROR_HEADER,
  OUTAGE_HEADER,
  QUEUE_HEADER,
  REASON_HEADER,
} from './delivery.js';
import { deadQueueName } from './topology.js';

/** Headers of a dead letter's life that a replayed copy starts without (its attempts count from 1). */
const DEAD_HEADERS = new Set([
  ATTEMPT_HEADER,
  OUTAGE_HEADER,
  ERROR_HEADER,
  REASON_HEADER,
  QUEUE_HEADER,
  DEAD_AT_HEADER,
]);

/** Header of a replayed message: when an operator put it back (ISO 8601). */
export const REPLAYED_AT_HEADER = 'x-dicomflow-replayed-at';

/** One dead-lettered message, as an operator sees it. */
export interface DeadLetter {
  /** Its message id: what `replay` takes. */
  readonly id: string;
  /** The work queue it died in (it goes back there on replay). */
  readonly queue: string;
  /** Its routing key (`flow.matched`, `job.cpu`, ...). */
  readonly type: string;
  /** Why: `unparseable`, `invalid`, `permanent` or `max-attempts`. */
  readonly reason: string;
  /** The last error. */
  readonly error: string;
  /** The run it belongs to (its correlation id), when it has one. */
  readonly runId?: string;
  /** When it was dead-lettered (ISO 8601). */
  readonly deadAt?: string;
  /** The attempts it had. */
  readonly attempts?: number;
}

/** Opens a connection of its own for an operator's command (no reconnecting: the command just fails). */
export async function connectForDeadLetters(config: BrokerConfig): Promise<ChannelModel> {
  const { url, tls } = amqpAddress(config);
  return connect(url, { ...tls, clientProperties: { connection_name: 'dicomflow-cli' }, timeout: 10_000 });
}

/**
 * Every dead letter of the work queues `queues`, oldest first per queue, left where they are: each one is
 * taken without ack and handed back (requeued) once the queue was read.
 */
export async function listDeadLetters(
  connection: ChannelModel,
  queues: readonly string[],
): Promise<DeadLetter[]> {
  const found: DeadLetter[] = [];
  for (const queue of queues) {
    await withDeadQueue(connection, queue, (_channel, messages) => {
      for (const message of messages) found.push(describe(queue, message));
      return Promise.resolve(new Set());
    });
  }
  return found;
}

/**
 * Puts the dead letters that `pick` chooses back on the work queue each died in (not on the exchange: no
 * other queue bound to its routing key gets it twice), with its attempts counted from 1 again; each is
 * removed from its dead-letter queue once the broker confirmed the new copy. The others stay. Returns the
 * ones put back.
 */
export async function replayDeadLetters(
  connection: ChannelModel,
  queues: readonly string[],
  pick: (letter: DeadLetter) => boolean,
): Promise<DeadLetter[]> {
  const replayed: DeadLetter[] = [];
  for (const queue of queues) {
    await withDeadQueue(connection, queue, async (channel, messages) => {
      const taken = new Set<GetMessage>();
      for (const message of messages) {
        const letter = describe(queue, message);
        if (!pick(letter)) continue;
        const props = copyProperties(message, { [REPLAYED_AT_HEADER]: new Date().toISOString() });
        props.headers = Object.fromEntries(
          Object.entries(props.headers as Record<string, unknown>).filter(
            ([name]) => !DEAD_HEADERS.has(name),
          ),
        );
        channel.publish('', queue, message.content, props);
        await channel.waitForConfirms();
        taken.add(message);
        replayed.push(letter);
      }
      return taken;
    });
  }
  return replayed;
}

/**
 * Reads a work queue's whole dead-letter queue without ack, lets `use` decide which messages it took, acks
 * those and requeues the rest. A queue that does not exist (a suite that never ran) has none.
 */
async function withDeadQueue(
  connection: ChannelModel,
  queue: string,
  use: (channel: ConfirmChannel, messages: readonly GetMessage[]) => Promise<Set<GetMessage>>,
): Promise<void> {
  const channel = await connection.createConfirmChannel();
  // checkQueue on a missing queue closes the channel with 404: the channel is this queue's alone.
  channel.on('error', () => undefined);
  const dead = deadQueueName(queue);
  try {
    await channel.checkQueue(dead);
  } catch {
    return;
  }
  const messages: GetMessage[] = [];
  try {
    for (let message = await channel.get(dead); message !== false; message = await channel.get(dead))
      messages.push(message);
    const taken = await use(channel, messages);
    for (const message of messages) {
      if (taken.has(message)) channel.ack(message);
      else channel.nack(message, false, true);
    }
  } finally {
    await channel.close().catch(() => undefined);
  }
}

function describe(queue: string, message: GetMessage): DeadLetter {
  const { properties } = message;
  const headers = (properties.headers ?? {}) as Record<string, unknown>;
  const text = (value: unknown): string | undefined =>
    typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
  const attempts = headers[ATTEMPT_HEADER];
  const runId = text(properties.correlationId);
  const deadAt = text(headers[DEAD_AT_HEADER]);
  return {
    id: text(properties.messageId) ?? '',
    queue,
    type: text(properties.type) ?? message.fields.routingKey,
    reason: text(headers[REASON_HEADER]) ?? 'unknown',
    error: text(headers[ERROR_HEADER]) ?? '',
    ...(runId === undefined ? {} : { runId }),
    ...(deadAt === undefined ? {} : { deadAt }),
    ...(typeof attempts === 'number' ? { attempts } : {}),
  };
}

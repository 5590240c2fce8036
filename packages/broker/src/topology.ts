import type { Channel } from 'amqplib';

/** The topic exchange every message is published to. */
export const EXCHANGE = 'dicomflow';
/** The topic exchange dead letters go to, routed by the name of the queue they died in. */
export const DEAD_EXCHANGE = 'dicomflow.dead';
/** Highest message priority; work queues are declared with it. */
export const MAX_PRIORITY = 5;

/** Exchange names in use (configurable so tests can isolate themselves). */
export interface ExchangeNames {
  readonly exchange: string;
  readonly deadExchange: string;
}

/** The queue that keeps the dead letters of work queue `queue`. */
export function deadQueueName(queue: string): string {
  return `${queue}.dead`;
}

/**
 * The delay queue that holds retries of `queue` for `delayMs`. The delay is in the name because a queue's
 * TTL cannot change once declared: a new delay list makes new queues instead of a declaration conflict.
 */
export function retryQueueName(queue: string, delayMs: number): string {
  return `${queue}.retry.${delayMs}ms`;
}

/** Declares the message and dead-letter exchanges (durable topic exchanges). */
export async function assertExchanges(channel: Channel, names: ExchangeNames): Promise<void> {
  await channel.assertExchange(names.exchange, 'topic', { durable: true });
  await channel.assertExchange(names.deadExchange, 'topic', { durable: true });
}

/**
 * Declares a work queue bound to `bindings` on the message exchange, plus its dead-letter queue.
 * Work queues are durable classic priority queues; anything the broker itself dead-letters (a reject without
 * requeue) goes to the dead exchange under the queue's name, as the consumer's explicit dead letters do.
 */
export async function assertWorkQueue(
  channel: Channel,
  names: ExchangeNames,
  queue: string,
  bindings: readonly string[],
): Promise<void> {
  await assertExchanges(channel, names);
  await channel.assertQueue(queue, {
    durable: true,
    arguments: {
      'x-queue-type': 'classic',
      'x-max-priority': MAX_PRIORITY,
      'x-dead-letter-exchange': names.deadExchange,
      'x-dead-letter-routing-key': queue,
    },
  });
  for (const key of bindings) await channel.bindQueue(queue, names.exchange, key);
  const dead = deadQueueName(queue);
  await channel.assertQueue(dead, { durable: true, arguments: { 'x-queue-type': 'classic' } });
  await channel.bindQueue(dead, names.deadExchange, queue);
}

/**
 * Declares one delay queue per distinct delay. Each holds messages for its fixed TTL and then dead-letters
 * them through the default exchange straight back into `queue`; with one TTL per queue, a long delay never
 * holds up a short one (no head-of-line blocking).
 */
export async function assertRetryQueues(
  channel: Channel,
  queue: string,
  delaysMs: readonly number[],
): Promise<void> {
  for (const delayMs of new Set(delaysMs)) {
    await channel.assertQueue(retryQueueName(queue, delayMs), {
      durable: true,
      arguments: {
        'x-queue-type': 'classic',
        'x-message-ttl': delayMs,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': queue,
      },
    });
  }
}

import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import {
  extractTraceContext,
  failSpan,
  startSpan,
  traceContextOf,
  withTraceContext,
  type Logger,
} from '@dicomflow/runtime';
import type { MessageOf, SchemaRoutingKey } from '@dicomflow/messages';
import type { ConnectionKeeper } from './connection.js';
import {
  ATTEMPT_HEADER,
  attemptOf,
  copyProperties,
  DEAD_AT_HEADER,
  decodeDelivery,
  ERROR_HEADER,
  OUTAGE_HEADER,
  outageRetriesOf,
  outcomeOfFailure,
  QUEUE_HEADER,
  REASON_HEADER,
  type Outcome,
} from './delivery.js';
import { computeBackoff, errorText } from './errors.js';
import type { Publisher } from './publisher.js';
import { assertRetryQueues, assertWorkQueue, retryQueueName, type ExchangeNames } from './topology.js';

/** What a handler learns about the delivery besides the body. */
export interface DeliveryContext {
  messageId: string;
  correlationId?: string;
  /** The routing key it was published with (also its `type`). */
  routingKey: string;
  /** 1 on the first attempt; counts retries after transient failures. */
  attempt: number;
  /** RabbitMQ delivered it before without an ack (e.g. a consumer died): the handler may have run already. */
  redelivered: boolean;
  priority: number;
  headers: Record<string, unknown>;
  /** Child logger carrying queue, message id, correlation id, routing key and attempt. */
  logger: Logger;
}

/** Which queue to consume, what it is bound to and how failures are retried. */
export interface ConsumeSpec<K extends SchemaRoutingKey> {
  queue: string;
  bindings: readonly K[];
  /** Unacked messages this consumer holds at once (default 1, which keeps priorities meaningful). */
  prefetch?: number;
  /** Attempts before a transiently failing message is dead-lettered (default 5). */
  maxAttempts?: number;
  /** Delay before retry n is `retryDelaysMs[n-1]`; the last one repeats (default 1 s, 5 s, 30 s, 2 min). */
  retryDelaysMs?: readonly number[];
  /**
   * Whether a failure for an outage (isOutage: a server the handler needs is down) counts as an attempt.
   * Default false: the message waits out an outage of any length. A consumer whose work must end (the
   * model runner fails a run after its last attempt, so no run waits forever) says true.
   */
  outagesCountAsAttempts?: boolean;
}

/** Handles one message; resolves once its side effects are durable and its own publishes confirmed. */
export type MessageHandler<K extends SchemaRoutingKey> = (
  body: MessageOf<K>,
  ctx: DeliveryContext,
) => Promise<void>;

export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [1000, 5000, 30_000, 120_000];

/** One queue's consumer: survives reconnects and channel failures, acks only after the handler settled. */
export class Consumer<K extends SchemaRoutingKey> {
  readonly #spec: Required<ConsumeSpec<K>>;
  readonly #handler: MessageHandler<K>;
  readonly #names: ExchangeNames;
  readonly #keeper: ConnectionKeeper;
  readonly #publisher: Publisher;
  readonly #log: Logger;
  #channel: Channel | undefined;
  #channelOf: ChannelModel | undefined;
  #consumerTag: string | undefined;
  #starting: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #closedChannels = new WeakSet<Channel>();

  constructor(
    spec: ConsumeSpec<K>,
    handler: MessageHandler<K>,
    deps: { names: ExchangeNames; keeper: ConnectionKeeper; publisher: Publisher; logger: Logger },
  ) {
    this.#spec = {
      queue: spec.queue,
      bindings: spec.bindings,
      prefetch: spec.prefetch ?? 1,
      maxAttempts: spec.maxAttempts ?? 5,
      retryDelaysMs: spec.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS,
      outagesCountAsAttempts: spec.outagesCountAsAttempts ?? false,
    };
    checkSpec(this.#spec);
    this.#handler = handler;
    this.#names = deps.names;
    this.#keeper = deps.keeper;
    this.#publisher = deps.publisher;
    this.#log = deps.logger.child({ queue: spec.queue });
  }

  /** Declares the queue's topology and starts consuming on `connection`, unless already consuming there. */
  async start(connection: ChannelModel): Promise<void> {
    while (this.#starting) await this.#starting.catch(() => undefined);
    if (this.#stopped || (this.#channel && this.#channelOf === connection)) return;
    this.#starting = this.#startOn(connection);
    try {
      await this.#starting;
    } finally {
      this.#starting = undefined;
    }
  }

  /** Stops new deliveries; in-flight handlers go on and are still acked. */
  async stopConsuming(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    while (this.#starting) await this.#starting.catch(() => undefined);
    const channel = this.#channel;
    const tag = this.#consumerTag;
    this.#consumerTag = undefined;
    if (channel && tag) await channel.cancel(tag);
  }

  /** Resolves when every in-flight handler settled (and was acked), or after `timeoutMs`; true if all did. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.#inFlight.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => {
        resolve(false);
      }, timeoutMs);
    });
    const settled = Promise.allSettled([...this.#inFlight]).then(() => true);
    const all = await Promise.race([settled, timedOut]);
    clearTimeout(timer);
    if (!all)
      this.#log.warn(
        { inFlight: this.#inFlight.size },
        'handlers still running at shutdown; their messages will be redelivered',
      );
    return all;
  }

  /** Closes the channel; unacked messages go back to the queue. */
  async closeChannel(): Promise<void> {
    const channel = this.#channel;
    this.#channel = undefined;
    if (channel) await channel.close();
  }

  async #startOn(connection: ChannelModel): Promise<void> {
    const { queue, bindings, prefetch, retryDelaysMs } = this.#spec;
    const channel = await connection.createChannel();
    channel.on('error', (err: Error) => {
      this.#log.warn({ err: errorText(err) }, 'consumer channel error');
    });
    channel.on('close', () => {
      this.#closedChannels.add(channel);
      this.#onChannelClose(channel, connection);
    });
    try {
      await assertWorkQueue(channel, this.#names, queue, bindings);
      await assertRetryQueues(channel, queue, retryDelaysMs);
      await channel.prefetch(prefetch);
      const { consumerTag } = await channel.consume(queue, (message) => {
        this.#onMessage(channel, message);
      });
      this.#channel = channel;
      this.#channelOf = connection;
      this.#consumerTag = consumerTag;
      this.#log.info({ bindings, prefetch }, 'consuming');
    } catch (err) {
      await channel.close().catch(() => undefined);
      throw err;
    }
  }

  #onChannelClose(channel: Channel, connection: ChannelModel): void {
    if (this.#channel !== channel) return;
    this.#channel = undefined;
    this.#consumerTag = undefined;
    if (!this.#stopped) this.#scheduleRestart(connection, 1);
  }

  /**
   * Re-opens the consumer after its channel alone failed. After a connection loss the check finds another
   * (or no) connection and leaves the restart to the connection keeper, which re-runs start().
   */
  #scheduleRestart(connection: ChannelModel, attempt: number): void {
    const delayMs = computeBackoff(attempt, { initialMs: 1000, maxMs: 30_000, jitter: true });
    this.#restartTimer = setTimeout(() => {
      if (this.#stopped || this.#keeper.connection !== connection) return;
      this.start(connection).catch((err: unknown) => {
        this.#log.error({ attempt, err: errorText(err) }, 'cannot restart consumer; retrying');
        this.#scheduleRestart(connection, attempt + 1);
      });
    }, delayMs);
  }

  #onMessage(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The server cancelled the consumer (e.g. the queue was deleted): re-declare on a fresh channel.
      this.#log.warn('consumer cancelled by RabbitMQ; restarting it');
      channel.close().catch(() => undefined);
      return;
    }
    const task = this.#handle(channel, message)
      .catch((err: unknown) => {
        this.#log.error({ err: errorText(err) }, 'settling a delivery failed; it will be redelivered');
      })
      .finally(() => this.#inFlight.delete(task));
    this.#inFlight.add(task);
  }

  async #handle(channel: Channel, message: ConsumeMessage): Promise<void> {
    const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
    const attempt = attemptOf(headers);
    const messageId = typeof message.properties.messageId === 'string' ? message.properties.messageId : '';
    const correlationId: unknown = message.properties.correlationId;
    const decoded = decodeDelivery(message, this.#spec.bindings);
    const logger = this.#log.child({
      messageId,
      correlationId,
      routingKey: decoded.routingKey,
      attempt,
      redelivered: message.fields.redelivered,
    });
    let outcome: Outcome;
    if (!decoded.ok) {
      outcome = decoded.outcome;
    } else {
      const ctx: DeliveryContext = {
        messageId,
        routingKey: decoded.routingKey,
        attempt,
        redelivered: message.fields.redelivered,
        priority: typeof message.properties.priority === 'number' ? message.properties.priority : 0,
        headers,
        logger,
        ...(typeof correlationId === 'string' ? { correlationId } : {}),
      };
      // A child of the publisher's span (its traceparent header): one trace across the services.
      const parent = extractTraceContext(headers);
      const span = startSpan(`process ${decoded.routingKey}`, {
        kind: 'consumer',
        parent,
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': this.#spec.queue,
          'messaging.rabbitmq.destination.routing_key': decoded.routingKey,
          'messaging.message.id': messageId,
          ...(typeof correlationId === 'string'
            ? { 'messaging.message.conversation_id': correlationId }
            : {}),
          'dicomflow.attempt': attempt,
        },
      });
      try {
        await withTraceContext(traceContextOf(span, parent), () => this.#handler(decoded.body, ctx));
        outcome = { action: 'ack' };
      } catch (err) {
        failSpan(span, err);
        outcome = this.#spec.outagesCountAsAttempts
          ? outcomeOfFailure(err, attempt, { ...this.#spec, outages: 'count' })
          : outcomeOfFailure(err, attempt, this.#spec, outageRetriesOf(headers));
      } finally {
        span.end();
      }
    }
    await this.#settle(channel, message, outcome, attempt, logger);
  }

  async #settle(
    channel: Channel,
    message: ConsumeMessage,
    outcome: Outcome,
    attempt: number,
    logger: Logger,
  ): Promise<void> {
    if (this.#closedChannels.has(channel)) {
      // RabbitMQ already requeued it; a retry or dead-letter copy now would only make a duplicate.
      logger.warn('channel closed while handling; the message will be redelivered');
      return;
    }
    try {
      await this.#publishCopy(message, outcome, attempt, logger);
    } catch (err) {
      // Without its retry or dead-letter copy the message must not be acked: put it back in the queue.
      logger.error(
        { err: errorText(err) },
        'cannot store the retry or dead-letter copy; requeueing the message',
      );
      settleSafely(
        () => {
          channel.nack(message, false, true);
        },
        'requeue',
        logger,
      );
      return;
    }
    settleSafely(
      () => {
        channel.ack(message);
      },
      outcome.action,
      logger,
    );
  }

  async #publishCopy(
    message: ConsumeMessage,
    outcome: Outcome,
    attempt: number,
    logger: Logger,
  ): Promise<void> {
    const { queue } = this.#spec;
    switch (outcome.action) {
      case 'ack':
        if (outcome.gone === undefined) logger.debug('message handled');
        else logger.info({ err: outcome.gone }, 'message refers to something gone; dropped');
        break;
      case 'retry': {
        const outages = outageRetriesOf(message.properties.headers);
        logger.warn(
          { err: outcome.error, delayMs: outcome.delayMs, ...(outcome.outage ? { outage: true } : {}) },
          outcome.outage
            ? 'a server the handler needs is down; retrying later (not counted as an attempt)'
            : 'handler failed; retrying later',
        );
        const retryHeaders = outcome.outage
          ? { [ATTEMPT_HEADER]: attempt, [OUTAGE_HEADER]: outages + 1, [ERROR_HEADER]: outcome.error }
          : { [ATTEMPT_HEADER]: attempt + 1, [ERROR_HEADER]: outcome.error };
        await this.#publisher.publishRaw(
          '',
          retryQueueName(queue, outcome.delayMs),
          message.content,
          copyProperties(message, retryHeaders),
        );
        break;
      }
      case 'dead':
        logger.error({ err: outcome.error, reason: outcome.reason }, 'message dead-lettered');
        await this.#publisher.publishRaw(
          this.#names.deadExchange,
          queue,
          message.content,
          copyProperties(message, {
            [ATTEMPT_HEADER]: attempt,
            [ERROR_HEADER]: outcome.error,
            [REASON_HEADER]: outcome.reason,
            [QUEUE_HEADER]: queue,
            [DEAD_AT_HEADER]: new Date().toISOString(),
          }),
        );
        break;
    }
  }
}

/**
 * Acks or requeues; when the channel closed meanwhile, the ack never reached RabbitMQ, which delivers the
 * message again. Handlers are idempotent and a retry or dead-letter copy already stored is recognised by
 * its message id, so the second delivery changes nothing: the log says which outcome was already taken,
 * so that a "dropped" or "dead-lettered" line followed by this one is not read as a contradiction.
 */
function settleSafely(settle: () => void, outcome: string, logger: Logger): void {
  try {
    settle();
  } catch (err) {
    logger.warn(
      { err: errorText(err), outcome },
      'cannot settle: channel closed; RabbitMQ delivers the message again and its outcome is not repeated',
    );
  }
}

function checkSpec(spec: Required<ConsumeSpec<SchemaRoutingKey>>): void {
  const problems: string[] = [];
  if (spec.queue === '' || spec.queue.length > 200) problems.push('queue must be a name of 1-200 characters');
  if (spec.bindings.length === 0) problems.push('bindings must not be empty');
  if (!Number.isInteger(spec.prefetch) || spec.prefetch < 1)
    problems.push('prefetch must be an integer >= 1');
  if (!Number.isInteger(spec.maxAttempts) || spec.maxAttempts < 1)
    problems.push('maxAttempts must be an integer >= 1');
  if (spec.retryDelaysMs.length === 0 || !spec.retryDelaysMs.every((d) => Number.isInteger(d) && d > 0)) {
    problems.push('retryDelaysMs must be a non-empty list of positive integers');
  }
  if (problems.length > 0)
    throw new TypeError(`invalid consume spec for "${spec.queue}": ${problems.join('; ')}`);
}

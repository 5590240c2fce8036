import type { ChannelModel } from 'amqplib';
import type { Logger } from '@dicomflow/runtime';
import type { MessageOf, SchemaRoutingKey } from '@dicomflow/messages';
import { ConnectionKeeper, type BrokerConfig } from './connection.js';
import { Consumer, type ConsumeSpec, type MessageHandler } from './consumer.js';
import { errorText, TransientError } from './errors.js';
import { Publisher, type PublishOptions } from './publisher.js';
import { suiteQueueList } from './suite-queues.js';
import { assertWorkQueue, DEAD_EXCHANGE, EXCHANGE, type ExchangeNames } from './topology.js';

/** How to reach RabbitMQ and how patient to be with it. */
export interface BrokerOptions {
  config: BrokerConfig;
  logger: Logger;
  /** Message exchange (default `dicomflow`). */
  exchange?: string;
  /** Dead-letter exchange (default `dicomflow.dead`). */
  deadExchange?: string;
  /** Backoff between connection attempts (default 500 ms doubling up to 30 s, with jitter). */
  reconnect?: { initialMs: number; maxMs: number };
  /** How long a publish may wait for a connection and its confirm (default 30 s). */
  publishTimeoutMs?: number;
  /** How long close() and cancel() wait for running handlers (default 30 s). */
  drainTimeoutMs?: number;
  /** The connection's name in RabbitMQ's management tools (default `dicomflow-<pid>`). */
  connectionName?: string;
  /** Sent as the `appId` property of every published message (e.g. the service name). */
  appId?: string;
  /** AMQP heartbeat in seconds (default 15). */
  heartbeatSeconds?: number;
  /** Aborting it gives up the first connection attempts (connectBroker then rejects). */
  signal?: AbortSignal;
}

/** A running consumer. */
export interface Subscription {
  /** Stops new deliveries, waits (bounded) for running handlers, closes the consumer's channel. */
  cancel(): Promise<void>;
}

/** Confirmed publishing and acked, retried, dead-lettering consuming over one self-healing connection. */
export interface Broker {
  /**
   * Validates `body` (invalid: PermanentError) and publishes it; resolves once RabbitMQ confirmed it. While
   * disconnected it waits for the reconnect, up to the publish timeout, then rejects with a TransientError.
   */
  publish<K extends SchemaRoutingKey>(
    routingKey: K,
    body: MessageOf<K>,
    opts?: PublishOptions,
  ): Promise<void>;
  /**
   * Declares the work queue (with its retry and dead-letter queues) and consumes it: each message is acked
   * once `handler` resolved; a failure is retried, dead-lettered or dropped by its error kind.
   */
  consume<K extends SchemaRoutingKey>(
    spec: ConsumeSpec<K>,
    handler: MessageHandler<K>,
  ): Promise<Subscription>;
  /** Declares a work queue and its dead-letter queue without consuming (for publish-only services, tests). */
  assertWorkQueue(queue: string, bindings: readonly string[]): Promise<void>;
  /**
   * Declares every work queue of the suite ({@link suiteQueues} with `prefix`), so that nothing published is
   * unroutable whichever service starts first. Each service calls it once connected.
   */
  assertSuiteQueues(prefix: string): Promise<void>;
  /** Readiness: resolves when connected with an open publisher channel, throws a TransientError otherwise. */
  check(): Promise<void>;
  /**
   * Stops consuming, waits (bounded) for running handlers, closes channels, then the connection.
   * Idempotent; every step runs even when an earlier one failed.
   */
  close(): Promise<void>;
}

/**
 * Connects to RabbitMQ, retrying with capped exponential backoff until it succeeds (or `opts.signal`
 * aborts), declares the exchanges and returns the broker. Lost connections are re-established the same way,
 * with consumers restarted on the new connection.
 */
export async function connectBroker(opts: BrokerOptions): Promise<Broker> {
  const broker = new AmqpBroker(opts);
  const onAbort = (): void => void broker.close();
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await broker.start();
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  return broker;
}

class AmqpBroker implements Broker {
  readonly #log: Logger;
  readonly #names: ExchangeNames;
  readonly #keeper: ConnectionKeeper;
  readonly #publisher: Publisher;
  readonly #consumers = new Set<Consumer<SchemaRoutingKey>>();
  readonly #drainTimeoutMs: number;
  readonly #waitTimeoutMs: number;
  #closing: Promise<void> | undefined;

  constructor(opts: BrokerOptions) {
    this.#log = opts.logger;
    this.#names = { exchange: opts.exchange ?? EXCHANGE, deadExchange: opts.deadExchange ?? DEAD_EXCHANGE };
    this.#drainTimeoutMs = opts.drainTimeoutMs ?? 30_000;
    this.#waitTimeoutMs = opts.publishTimeoutMs ?? 30_000;
    this.#keeper = new ConnectionKeeper({
      config: opts.config,
      logger: opts.logger,
      connectionName: opts.connectionName ?? `dicomflow-${process.pid}`,
      reconnect: opts.reconnect ?? { initialMs: 500, maxMs: 30_000 },
      heartbeatSeconds: opts.heartbeatSeconds ?? 15,
      onConnected: (connection) => this.#onConnected(connection),
    });
    this.#publisher = new Publisher({
      keeper: this.#keeper,
      names: this.#names,
      logger: opts.logger,
      timeoutMs: this.#waitTimeoutMs,
      ...(opts.appId === undefined ? {} : { appId: opts.appId }),
    });
  }

  async start(): Promise<void> {
    await this.#keeper.start();
  }

  async publish<K extends SchemaRoutingKey>(
    routingKey: K,
    body: MessageOf<K>,
    opts?: PublishOptions,
  ): Promise<void> {
    await this.#publisher.publish(routingKey, body, opts);
  }

  async consume<K extends SchemaRoutingKey>(
    spec: ConsumeSpec<K>,
    handler: MessageHandler<K>,
  ): Promise<Subscription> {
    if (this.#closing) throw new TransientError('broker is closed');
    // Kept next to consumers of other keys; the handler's parameter type makes Consumer<K> invariant.
    const consumer = new Consumer(spec, handler, {
      names: this.#names,
      keeper: this.#keeper,
      publisher: this.#publisher,
      logger: this.#log,
    }) as unknown as Consumer<SchemaRoutingKey>;
    // Registered first so that a reconnect while starting also starts it on the new connection.
    this.#consumers.add(consumer);
    try {
      await consumer.start(await this.#keeper.waitForConnection(this.#waitTimeoutMs));
    } catch (err) {
      await this.#stopConsumer(consumer);
      throw err;
    }
    return { cancel: () => this.#stopConsumer(consumer) };
  }

  async assertWorkQueue(queue: string, bindings: readonly string[]): Promise<void> {
    const connection = await this.#keeper.waitForConnection(this.#waitTimeoutMs);
    const channel = await connection.createChannel();
    try {
      await assertWorkQueue(channel, this.#names, queue, bindings);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async assertSuiteQueues(prefix: string): Promise<void> {
    const connection = await this.#keeper.waitForConnection(this.#waitTimeoutMs);
    const channel = await connection.createChannel();
    try {
      for (const queue of suiteQueueList(prefix)) {
        await assertWorkQueue(channel, this.#names, queue.name, queue.bindings);
      }
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async check(): Promise<void> {
    if (this.#closing) throw new TransientError('broker is closed');
    if (!this.#keeper.connection) throw new TransientError('not connected to RabbitMQ');
    await this.#publisher.ensureChannel();
  }

  close(): Promise<void> {
    this.#closing ??= this.#closeInOrder();
    return this.#closing;
  }

  async #onConnected(connection: ChannelModel): Promise<void> {
    await this.#publisher.attach(connection);
    for (const consumer of this.#consumers) await consumer.start(connection);
  }

  async #stopConsumer(consumer: Consumer<SchemaRoutingKey>): Promise<void> {
    this.#consumers.delete(consumer);
    await this.#step('stop consuming', () => consumer.stopConsuming());
    await consumer.drain(this.#drainTimeoutMs);
    await this.#step('close consumer channel', () => consumer.closeChannel());
  }

  async #closeInOrder(): Promise<void> {
    const consumers = [...this.#consumers];
    this.#consumers.clear();
    for (const consumer of consumers) await this.#step('stop consuming', () => consumer.stopConsuming());
    await Promise.all(consumers.map((consumer) => consumer.drain(this.#drainTimeoutMs)));
    for (const consumer of consumers)
      await this.#step('close consumer channel', () => consumer.closeChannel());
    await this.#step('close publisher channel', () => this.#publisher.close());
    await this.#step('close connection', () => this.#keeper.close());
    this.#log.info('broker closed');
  }

  async #step(name: string, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.#log.warn({ step: name, err: errorText(err) }, 'broker shutdown step failed; continuing');
    }
  }
}

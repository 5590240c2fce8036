import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { IllegalOperationError, type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';
import { failSpan, injectTraceHeaders, startSpan, traceContextOf, type Logger } from '@dicomflow/runtime';
import { SCHEMA_VERSION, validateMessage, type MessageOf, type SchemaRoutingKey } from '@dicomflow/messages';
import type { ConnectionKeeper } from './connection.js';
import { computeBackoff, errorKind, errorText, PermanentError, TransientError } from './errors.js';
import { assertExchanges, MAX_PRIORITY, type ExchangeNames } from './topology.js';

/** Per-message choices of a publish. */
export interface PublishOptions {
  /** Defaults to a new UUID. Pass a stable one to make a repeated publish recognisable downstream. */
  messageId?: string;
  /** The run id once a flow matched; defaults to the message id. */
  correlationId?: string;
  /** 0-5 (default 0); higher is consumed first. */
  priority?: number;
  headers?: Record<string, string | number | boolean>;
}

/** Properties of a message copied into a retry or dead-letter queue. */
export type RawPublishProperties = Options.Publish & { messageId: string };

/** Publishes with publisher confirms on one confirm channel per connection, re-opened when it breaks. */
export class Publisher {
  readonly #keeper: ConnectionKeeper;
  readonly #names: ExchangeNames;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #appId: string | undefined;
  #channel: ConfirmChannel | undefined;
  #channelOf: ChannelModel | undefined;
  #opening: Promise<ConfirmChannel> | undefined;

  constructor(opts: {
    keeper: ConnectionKeeper;
    names: ExchangeNames;
    logger: Logger;
    timeoutMs: number;
    appId?: string;
  }) {
    this.#keeper = opts.keeper;
    this.#names = opts.names;
    this.#log = opts.logger;
    this.#timeoutMs = opts.timeoutMs;
    this.#appId = opts.appId;
  }

  /** Opens the confirm channel of a new connection and declares the exchanges. */
  async attach(connection: ChannelModel): Promise<void> {
    await this.#open(connection);
  }

  /**
   * Validates `body` against its routing key's schema (invalid: {@link PermanentError}) and publishes it
   * persistent, with message id, correlation id, type, timestamp and `schema-version` header, in a producer
   * span whose W3C `traceparent` travels in the headers (when tracing is on). Resolves once
   * RabbitMQ confirmed it; while disconnected, waits for the reconnect and rejects with a
   * {@link TransientError} when that takes longer than the publish timeout.
   */
  async publish<K extends SchemaRoutingKey>(
    routingKey: K,
    body: MessageOf<K>,
    opts: PublishOptions = {},
  ): Promise<void> {
    const valid = validateMessage(routingKey, body);
    if (!valid.ok) throw new PermanentError(`invalid ${routingKey} message: ${valid.error}`);
    const priority = opts.priority ?? 0;
    if (!Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
      throw new PermanentError(`priority must be an integer 0-${MAX_PRIORITY}, got ${priority}`);
    }
    const messageId = opts.messageId ?? randomUUID();
    const correlationId = opts.correlationId ?? messageId;
    // The consumer's span becomes a child of this one: the trace goes on in the next service.
    const span = startSpan(`publish ${routingKey}`, {
      kind: 'producer',
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'send',
        'messaging.destination.name': this.#names.exchange,
        'messaging.rabbitmq.destination.routing_key': routingKey,
        'messaging.message.id': messageId,
        'messaging.message.conversation_id': correlationId,
      },
    });
    const trace: Record<string, unknown> = {};
    injectTraceHeaders(trace, traceContextOf(span));
    try {
      await this.publishRaw(this.#names.exchange, routingKey, Buffer.from(JSON.stringify(body)), {
        messageId,
        correlationId,
        type: routingKey,
        timestamp: Math.floor(Date.now() / 1000),
        priority,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        ...(this.#appId === undefined ? {} : { appId: this.#appId }),
        headers: { ...opts.headers, ...trace, 'schema-version': SCHEMA_VERSION },
      });
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /**
   * Publishes prepared content persistently and resolves when confirmed. A broken channel or connection is
   * retried until the publish timeout (the same message id may then arrive twice), then it rejects with
   * a {@link TransientError}.
   */
  async publishRaw(
    exchange: string,
    routingKey: string,
    content: Buffer,
    props: RawPublishProperties,
  ): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs;
    for (let attempt = 1; ; attempt++) {
      let lastError: unknown;
      try {
        const channel = await this.#channelFor(deadline);
        await confirmPublish(
          channel,
          exchange,
          routingKey,
          content,
          { ...props, persistent: true, mandatory: true },
          deadline,
        );
        return;
      } catch (err) {
        if (errorKind(err) === 'permanent' || err instanceof UnroutableError) throw err;
        if (this.#keeper.closed) throw new TransientError('broker is closed', { cause: err });
        lastError = err;
      }
      const delayMs = computeBackoff(attempt, { initialMs: 50, maxMs: 2000 });
      if (Date.now() + delayMs >= deadline) {
        throw new TransientError(
          `publish to ${exchange || '(default)'}/${routingKey} not confirmed within ${this.#timeoutMs} ms: ${errorText(lastError)}`,
          { cause: lastError },
        );
      }
      this.#log.debug(
        { attempt, messageId: props.messageId, err: errorText(lastError) },
        'publish failed; retrying',
      );
      await sleep(delayMs);
    }
  }

  /** Re-opens the channel if it broke; rejects with a TransientError when not connected. */
  async ensureChannel(): Promise<void> {
    await this.#channelFor(Date.now());
  }

  /** Closes the channel (the connection is closed by the keeper). */
  async close(): Promise<void> {
    const channel = this.#channel;
    this.#channel = undefined;
    if (channel) await channel.close();
  }

  async #channelFor(deadline: number): Promise<ConfirmChannel> {
    const connection = await this.#keeper.waitForConnection(Math.max(0, deadline - Date.now()));
    if (this.#channel && this.#channelOf === connection) return this.#channel;
    return this.#open(connection);
  }

  async #open(connection: ChannelModel): Promise<ConfirmChannel> {
    this.#opening ??= this.#openChannel(connection).finally(() => {
      this.#opening = undefined;
    });
    const channel = await this.#opening;
    // A channel opened for an older connection by a concurrent caller is no use to this one.
    return this.#channelOf === connection ? channel : this.#open(connection);
  }

  async #openChannel(connection: ChannelModel): Promise<ConfirmChannel> {
    const channel = await connection.createConfirmChannel();
    channel.on('error', (err: Error) => {
      this.#log.warn({ err: errorText(err) }, 'publisher channel error');
    });
    channel.on('close', () => {
      if (this.#channel === channel) this.#channel = undefined;
    });
    const returned = new Set<string>();
    RETURNED.set(channel, returned);
    channel.on(
      'return',
      (message: {
        fields: { exchange: string; routingKey: string };
        properties: { messageId?: unknown };
      }) => {
        if (typeof message.properties.messageId === 'string') returned.add(message.properties.messageId);
        this.#log.warn(
          {
            exchange: message.fields.exchange,
            routingKey: message.fields.routingKey,
            messageId: message.properties.messageId,
          },
          'message unroutable: no queue is bound for its routing key; the publish fails',
        );
      },
    );
    await assertExchanges(channel, this.#names);
    this.#channel = channel;
    this.#channelOf = connection;
    return channel;
  }
}

/** Message ids RabbitMQ returned as unroutable, per channel (a return always precedes its confirm). */
const RETURNED = new WeakMap<ConfirmChannel, Set<string>>();

/**
 * No queue is bound for the routing key: RabbitMQ confirmed the message but dropped it. Transient, because
 * the consumer's queue may simply not be declared yet (a service started before its downstream); the
 * caller keeps the message and retries rather than losing it.
 */
export class UnroutableError extends TransientError {
  constructor(exchange: string, routingKey: string) {
    super(`no queue is bound to ${exchange || '(default)'}/${routingKey}: the message was not delivered`);
  }
}

async function confirmPublish(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  content: Buffer,
  props: Options.Publish,
  deadline: number,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        reject(new TransientError('no publisher confirm before the publish timeout'));
      },
      Math.max(0, deadline - Date.now()),
    );
    try {
      channel.publish(exchange, routingKey, content, props, (err: unknown) => {
        clearTimeout(timer);
        const returned = RETURNED.get(channel);
        const messageId = typeof props.messageId === 'string' ? props.messageId : undefined;
        if (err) reject(err instanceof Error ? err : new Error(errorText(err)));
        else if (messageId !== undefined && returned?.delete(messageId))
          reject(new UnroutableError(exchange, routingKey));
        else resolve();
      });
    } catch (err) {
      clearTimeout(timer);
      // A closed channel throws IllegalOperationError (retry on a new one); anything else, such as an
      // oversized header table, will fail again however often it is retried.
      reject(
        err instanceof IllegalOperationError
          ? err
          : new PermanentError(`cannot publish: ${errorText(err)}`, { cause: err }),
      );
    }
  });
}

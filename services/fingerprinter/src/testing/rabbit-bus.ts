// A test's own view of RabbitMQ: private exchanges, a confirmed publisher, collectors and queue inspection.
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { connectBroker, deadQueueName, retryQueueName, type Broker } from '@dicomflow/broker';
import type { FlowMatched, StudyReceived } from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { testBrokerConfig, waitFor } from '@dicomflow/test-helpers';

/** A `flow.matched` as it arrived, with the properties the assertions need. */
export interface ObservedFlowMatched {
  readonly body: FlowMatched;
  readonly messageId: string;
  readonly correlationId: unknown;
  readonly priority: unknown;
  readonly type: unknown;
}

/** A name no other test run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * RabbitMQ as one test sees it. With `exchange` unset it makes a private pair of exchanges (deleted by
 * {@link RabbitBus.close}), so a test neither sees nor disturbs the messages of others.
 */
export class RabbitBus {
  readonly #queues = new Set<string>();

  private constructor(
    readonly exchange: string,
    readonly deadExchange: string,
    private readonly own: boolean,
    private readonly connection: amqp.ChannelModel,
    private readonly channel: amqp.Channel,
    private readonly broker: Broker,
  ) {}

  static async open(shared?: { exchange: string; deadExchange: string }): Promise<RabbitBus> {
    const exchange = shared?.exchange ?? uniqueName('test.fingerprinter');
    const deadExchange = shared?.deadExchange ?? `${exchange}.dead`;
    const config = testBrokerConfig();
    const connection = await amqp.connect(config);
    const channel = await connection.createChannel();
    await channel.assertExchange(exchange, 'topic', { durable: true });
    await channel.assertExchange(deadExchange, 'topic', { durable: true });
    const broker = await connectBroker({
      config,
      logger: createLogger({ service: 'test-bus', level: 'silent' }),
      exchange,
      deadExchange,
      connectionName: uniqueName('test-bus'),
    });
    return new RabbitBus(exchange, deadExchange, shared === undefined, connection, channel, broker);
  }

  /** Exchanges to hand to the service under test. */
  get exchanges(): { exchange: string; deadExchange: string } {
    return { exchange: this.exchange, deadExchange: this.deadExchange };
  }

  /**
   * A work queue name for the service under test; it is deleted, with its dead-letter queue and the retry
   * queues of `retryDelaysMs`, by {@link RabbitBus.close}.
   */
  queue(prefix: string, retryDelaysMs: readonly number[]): string {
    const name = uniqueName(prefix);
    this.forget(name, retryDelaysMs);
    return name;
  }

  /** Deletes `queue`, its dead-letter queue and its retry queues on close. */
  forget(queue: string, retryDelaysMs: readonly number[]): void {
    this.#queues.add(queue);
    this.#queues.add(deadQueueName(queue));
    for (const delay of retryDelaysMs) this.#queues.add(retryQueueName(queue, delay));
  }

  /** Declares a work queue bound to `study.received` (so messages published before its consumer wait). */
  async assertStudyReceivedQueue(queue: string): Promise<void> {
    await this.broker.assertWorkQueue(queue, ['study.received']);
  }

  /** Publishes a `study.received` (validated, confirmed) with a fresh message id, as storescp does. */
  async publishStudyReceived(study: StudyReceived): Promise<void> {
    await this.broker.publish('study.received', study, {
      messageId: randomUUID(),
      correlationId: study.receiptId,
    });
  }

  /** Collects every `flow.matched` about `bucket` from a private queue bound now. */
  async collectFlowMatched(bucket: string): Promise<FlowMatchedCollector> {
    const { queue } = await this.channel.assertQueue(`test.flow-matched.${randomUUID()}`, {
      exclusive: true,
      autoDelete: true,
    });
    await this.channel.bindQueue(queue, this.exchange, 'flow.matched');
    const collector = new FlowMatchedCollector();
    await this.channel.consume(
      queue,
      (message) => {
        if (!message) return;
        const body = JSON.parse(message.content.toString('utf8')) as FlowMatched;
        if (body.bucket !== bucket) return;
        collector.messages.push({
          body,
          messageId: String(message.properties.messageId),
          correlationId: message.properties.correlationId,
          priority: message.properties.priority,
          type: message.properties.type,
        });
      },
      { noAck: true },
    );
    return collector;
  }

  /** Messages ready in `queue` (0 when it does not exist). */
  async messageCount(queue: string): Promise<number> {
    const channel = await this.connection.createChannel();
    channel.on('error', () => undefined);
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } catch {
      return 0;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Takes the next message of `queue`, or undefined when it is empty. */
  async take(queue: string): Promise<amqp.GetMessage | undefined> {
    const message = await this.channel.get(queue, { noAck: true });
    return message === false ? undefined : message;
  }

  /** Deletes the test's queues (and its exchanges when private), then disconnects. */
  async close(): Promise<void> {
    await this.broker.close();
    for (const queue of this.#queues) await this.channel.deleteQueue(queue).catch(() => undefined);
    if (this.own) {
      await this.channel.deleteExchange(this.exchange);
      await this.channel.deleteExchange(this.deadExchange);
    }
    await this.connection.close().catch(() => undefined);
  }
}

/** `flow.matched` messages collected so far, in arrival order. */
export class FlowMatchedCollector {
  readonly messages: ObservedFlowMatched[] = [];

  /** Waits until the messages collected satisfy `predicate` (bounded by `timeoutMs`). */
  async until(
    predicate: (messages: readonly ObservedFlowMatched[]) => boolean,
    what: string,
    timeoutMs = 30_000,
  ): Promise<ObservedFlowMatched[]> {
    await waitFor(() => predicate(this.messages), what, timeoutMs);
    return [...this.messages];
  }

  /** The messages about `receiptId`. */
  of(receiptId: string): ObservedFlowMatched[] {
    return this.messages.filter((message) => message.body.receiptId === receiptId);
  }
}

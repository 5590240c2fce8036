// Helpers for the broker's integration tests against the real RabbitMQ on this machine.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { pino, type Logger } from 'pino';
import type { StudyReceived } from '@dicomflow/messages';
import type { BrokerConfig } from '../connection.js';
import { DEFAULT_RETRY_DELAYS_MS } from '../consumer.js';
import { deadQueueName, retryQueueName } from '../topology.js';

const run = promisify(execFile);

/** The RabbitMQ every test uses. */
export const RABBIT: BrokerConfig = {
  hostname: '127.0.0.1',
  port: 5672,
  username: 'guest',
  password: 'guest',
};

/** A name no other test run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A logger that keeps its lines (parsed) for assertions; `onLine` sees each one as it is written. */
export function captureLogs(onLine?: (line: Record<string, unknown>) => void): {
  logger: Logger;
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(text: string) {
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        onLine?.(line);
      },
    },
  );
  return { logger, lines };
}

/** Polls `predicate` until it holds; fails with `what` after `timeoutMs` (a bound, not an assertion). */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A valid `study.received` body. */
export function studyReceived(overrides: Partial<StudyReceived> = {}): StudyReceived {
  const receiptId = randomUUID();
  return {
    receiptId,
    receivedAt: new Date().toISOString(),
    grouping: 'association',
    callingAeTitle: 'SCU',
    calledAeTitle: 'STORESCP',
    callingHost: '127.0.0.1',
    bucket: 'dicomflow',
    tarKey: `incoming/${receiptId}.tar`,
    indexKey: `incoming/${receiptId}.index.json`,
    tarSize: 1024,
    tarSubdir: [],
    instanceCount: 1,
    studies: [
      {
        studyInstanceUid: '1.2.3',
        series: [{ seriesInstanceUid: '1.2.3.4', modality: 'CT', instanceCount: 1 }],
      },
    ],
    ...overrides,
  };
}

/**
 * A raw amqplib connection for a test to look at queues and publish malformed messages, with exchanges of
 * its own so that tests never see each other's (or the services') messages.
 */
export class RabbitTestKit {
  readonly exchange = uniqueName('test.dicomflow');
  readonly deadExchange = `${this.exchange}.dead`;
  readonly #queues = new Set<string>();

  private constructor(
    readonly connection: ChannelModel,
    readonly channel: Channel,
  ) {}

  static async open(): Promise<RabbitTestKit> {
    const connection = await connect(
      `amqp://${RABBIT.username}:${RABBIT.password}@${RABBIT.hostname}:${RABBIT.port}`,
    );
    const channel = await connection.createChannel();
    return new RabbitTestKit(connection, channel);
  }

  /** A queue name deleted (with its dead and retry queues) by {@link RabbitTestKit.cleanup}. */
  queue(prefix = 'test.q', retryDelaysMs: readonly number[] = DEFAULT_RETRY_DELAYS_MS): string {
    const name = uniqueName(prefix);
    this.#queues.add(name);
    this.#queues.add(deadQueueName(name));
    for (const delay of retryDelaysMs) this.#queues.add(retryQueueName(name, delay));
    return name;
  }

  /** Ready messages in `queue`. */
  async messageCount(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount;
  }

  /** Takes (and acks) the next message of `queue`; false when it is empty. */
  async get(queue: string): Promise<GetMessage | false> {
    return this.channel.get(queue, { noAck: true });
  }

  /** Waits until `queue` holds a message and takes it. */
  async waitForMessage(queue: string, timeoutMs = 30_000): Promise<GetMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = await this.get(queue);
      if (message) return message;
      if (Date.now() > deadline) throw new Error(`timed out waiting for a message in ${queue}`);
      await sleep(20);
    }
  }

  /** Deletes the test's queues and exchanges and closes the connection. */
  async cleanup(): Promise<void> {
    const channel = await this.connection.createChannel();
    for (const queue of this.#queues) await channel.deleteQueue(queue);
    await channel.deleteExchange(this.exchange);
    await channel.deleteExchange(this.deadExchange);
    await this.connection.close();
  }
}

/**
 * Closes, from the server side, every connection whose client property `connection_name` is `name` (only
 * the test's own), as a broker restart or network failure would. Returns how many it closed.
 */
export async function closeConnectionsNamed(name: string): Promise<number> {
  const { stdout } = await run('rabbitmqctl', [
    'list_connections',
    'pid',
    'client_properties',
    '-q',
    '--no-table-headers',
  ]);
  const pids = stdout
    .split('\n')
    .filter((line) => line.includes(`{"connection_name","${name}"}`))
    .map((line) => line.split('\t')[0] ?? '');
  for (const pid of pids)
    await run('rabbitmqctl', ['close_connection', pid, 'test: simulated connection loss']);
  return pids.length;
}

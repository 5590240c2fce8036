import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import pg from 'pg';
import tar from 'tar-stream';
import {
  connectBroker,
  deadQueueName,
  deleteSuiteQueues,
  retryQueueName,
  type Broker,
  type Subscription,
} from '@dicomflow/broker';
import { loadConfig } from '@dicomflow/config';
import {
  flowFinishedMessageId,
  type FlowFinished,
  type SendFailed,
  type SendFinished,
  type SendStarted,
} from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { createStorage, type Storage } from '@dicomflow/storage';
import { testBrokerConfig, testEnvironment, testStorageConfig, waitFor } from '@dicomflow/test-helpers';
import { SENDER_RETRY_DELAYS_MS } from '../consumers/flow-finished.js';
import { createService, type SenderConfig, type SenderService } from '../service.js';

const TEST_RETRY_DELAYS_MS: readonly number[] = [200];

/** Names of one test's isolated world. */
export interface Isolation {
  readonly exchange: string;
  readonly queuePrefix: string;
  readonly schema: string;
  readonly bucket: string;
}

export function newIsolation(): Isolation {
  const id = randomUUID().replaceAll('-', '').slice(0, 10);
  return {
    exchange: `test.send-${id}`,
    queuePrefix: `test.send-${id}.`,
    schema: `send_test_${id}`,
    bucket: `send-test-${id}`,
  };
}

/** Environment for a sender in `isolation`, with retries short enough for tests. */
export function senderEnvironment(isolation: Isolation, spoolDir: string): Record<string, string> {
  return {
    ...testEnvironment(),
    HTTP_PORT: '0',
    HTTP_HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RABBIT_EXCHANGE: isolation.exchange,
    RABBIT_QUEUE_PREFIX: isolation.queuePrefix,
    SENDER_DB_SCHEMA: isolation.schema,
    SENDER_SPOOL_DIR: spoolDir,
    SENDER_AE_TITLE: 'DICOMFLOW',
    SEND_MAX_ATTEMPTS: '5',
    SEND_RETRY_INITIAL_MS: '300',
    SEND_RETRY_MAX_MS: '2000',
    SEND_TIMEOUT_MS: '10000',
  };
}

/** A sender started in this process. */
export interface InProcessSender {
  readonly service: SenderService;
  readonly config: SenderConfig;
  close(): Promise<void>;
}

/** One send.* event as the test bus saw it. */
export type SendEvent =
  | { routingKey: 'send.started'; messageId: string; body: SendStarted }
  | { routingKey: 'send.finished'; messageId: string; body: SendFinished }
  | { routingKey: 'send.failed'; messageId: string; body: SendFailed };

/** A test world: the sender's isolation, a bus to publish flow.finished and collect send.*, S3. */
export class SenderWorld {
  readonly events: SendEvent[] = [];
  readonly storage: Storage;
  readonly #senders: InProcessSender[] = [];
  #subscription: Subscription | undefined;

  private constructor(
    readonly isolation: Isolation,
    readonly broker: Broker,
    readonly spoolDir: string,
  ) {
    this.storage = createStorage(testStorageConfig());
  }

  static async create(): Promise<SenderWorld> {
    const isolation = newIsolation();
    const broker = await connectBroker({
      config: testBrokerConfig(),
      logger: createLogger({ service: 'sender-test-bus', level: 'silent' }),
      exchange: isolation.exchange,
      deadExchange: `${isolation.exchange}.dead`,
      connectionName: `sender-test-bus-${process.pid}`,
    });
    await broker.assertSuiteQueues(isolation.queuePrefix);
    const spoolDir = await mkdtemp(join(tmpdir(), 'sender-spool-'));
    const world = new SenderWorld(isolation, broker, spoolDir);
    await world.storage.ensureBucket(isolation.bucket);
    world.#subscription = await broker.consume(
      {
        queue: `${isolation.queuePrefix}test.send-events`,
        bindings: ['send.started', 'send.finished', 'send.failed'],
        prefetch: 50,
        retryDelaysMs: TEST_RETRY_DELAYS_MS,
      },
      (body, ctx) => {
        world.events.push({ routingKey: ctx.routingKey, messageId: ctx.messageId, body } as SendEvent);
        return Promise.resolve();
      },
    );
    return world;
  }

  /** Starts a sender in this process (overrides on top of {@link senderEnvironment}). */
  async startSender(overrides: Record<string, string> = {}): Promise<InProcessSender> {
    const confDir = await mkdtemp(join(tmpdir(), 'sender-conf-'));
    const config = loadConfig('sender', {
      confDir,
      env: { ...senderEnvironment(this.isolation, this.spoolDir), ...overrides },
    });
    const service = createService(config, createLogger({ service: 'sender-test', level: config.LOG_LEVEL }));
    await service.start();
    const sender: InProcessSender = {
      service,
      config,
      async close() {
        await service.close();
        await rm(confDir, { recursive: true, force: true });
      },
    };
    this.#senders.push(sender);
    return sender;
  }

  /** Uploads a tar of `members` (name -> local file or bytes) as a run output; returns its key. */
  async putOutputTar(runId: string, members: readonly { name: string; path?: string; data?: Buffer }[]) {
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (chunk: unknown) => {
      chunks.push(chunk as Buffer);
    });
    const ended = new Promise<void>((resolve, reject) => {
      pack.on('end', resolve);
      pack.on('error', reject);
    });
    for (const member of members) {
      const data = member.data ?? (await readFile(member.path ?? ''));
      pack.entry({ name: member.name, size: data.length }, data);
    }
    pack.finalize();
    await ended;
    const key = `${runId}/1/output.tar`;
    await this.storage.putBuffer(this.isolation.bucket, key, Buffer.concat(chunks));
    return { bucket: this.isolation.bucket, key };
  }

  /** Publishes a `flow.finished` (with the contract's message id). */
  /**
   * Starts a new run: puts an output tar of `members` and publishes the run's flow.finished (with `opts`:
   * destinations, return to sender). Returns the run id and the message, for a test to publish it again.
   */
  async publishRun(
    members: readonly { name: string; path?: string; data?: Buffer }[],
    opts: Omit<Parameters<typeof flowFinished>[0], 'output' | 'runId'>,
  ): Promise<{ runId: string; finished: FlowFinished }> {
    const runId = randomUUID();
    const finished = flowFinished({ ...opts, runId, output: await this.putOutputTar(runId, members) });
    await this.publishFlowFinished(finished);
    return { runId, finished };
  }

  async publishFlowFinished(finished: FlowFinished): Promise<void> {
    await this.broker.publish('flow.finished', finished, {
      messageId: flowFinishedMessageId(finished.runId),
      correlationId: finished.runId,
    });
  }

  eventsOf(runId: string): SendEvent[] {
    return this.events.filter((event) => event.body.runId === runId);
  }

  /** The run's send.finished or send.failed, once there. */
  outcomeOf(runId: string): Extract<SendEvent, { routingKey: 'send.finished' | 'send.failed' }> | undefined {
    return this.eventsOf(runId).find(
      (event): event is Extract<SendEvent, { routingKey: 'send.finished' | 'send.failed' }> =>
        event.routingKey !== 'send.started',
    );
  }

  /** Waits for the run's send.finished or send.failed (the timeout only bounds a hanging test). */
  async waitForOutcome(
    runId: string,
    timeoutMs = 60_000,
  ): Promise<Extract<SendEvent, { routingKey: 'send.finished' | 'send.failed' }>> {
    await waitFor(() => this.outcomeOf(runId) !== undefined, `the send outcome of run ${runId}`, timeoutMs);
    const outcome = this.outcomeOf(runId);
    if (!outcome) throw new Error('no outcome');
    return outcome;
  }

  /** Stops the senders, deletes the isolation's queues, exchanges, schema, bucket and spool. */
  async cleanup(): Promise<void> {
    for (const sender of this.#senders.splice(0)) await sender.close().catch(() => undefined);
    await this.#subscription?.cancel().catch(() => undefined);
    await this.broker.close();
    const { queuePrefix, exchange, schema, bucket } = this.isolation;
    const connection = await amqp.connect(testBrokerConfig());
    const channel = await connection.createChannel();
    await deleteSuiteQueues(channel, queuePrefix, SENDER_RETRY_DELAYS_MS);
    const mine = `${queuePrefix}test.send-events`;
    await channel.deleteQueue(mine);
    await channel.deleteQueue(deadQueueName(mine));
    for (const delay of TEST_RETRY_DELAYS_MS) await channel.deleteQueue(retryQueueName(mine, delay));
    await channel.deleteExchange(exchange);
    await channel.deleteExchange(`${exchange}.dead`);
    await connection.close();
    await withDatabase((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    for (const object of await this.storage.list(bucket)) await this.storage.remove(bucket, object.key);
    await this.storage.removeBucket(bucket);
    await rm(this.spoolDir, { recursive: true, force: true });
  }
}

/** Runs `work` with a connection to the test database. */
export async function withDatabase<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const env = testEnvironment();
  const client = new pg.Client({
    host: env.DB_HOST,
    port: Number(env.DB_PORT),
    database: env.DB_NAME,
    user: env.DB_USER,
    password: env.DB_PASS,
  });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A valid `flow.finished` for `output`, sending to `destinations` (and back to the sender on `ports`). */
export function flowFinished(opts: {
  output: { bucket: string; key: string };
  destinations?: FlowFinished['destinations'];
  returnToSender?: FlowFinished['returnToSender'];
  runId?: string;
}): FlowFinished {
  return {
    runId: opts.runId ?? randomUUID(),
    receiptId: randomUUID(),
    flowName: 'send-test',
    flowVersion: '1',
    flowFile: 'send-test.yaml',
    finishedAt: new Date().toISOString(),
    stepCount: 1,
    output: opts.output,
    destinations: opts.destinations ?? [],
    returnToSender: opts.returnToSender ?? { host: '127.0.0.1', aeTitle: 'SCANNER', ports: [] },
  };
}

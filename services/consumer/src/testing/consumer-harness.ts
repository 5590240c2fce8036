import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { expect } from 'vitest';
import Docker from 'dockerode';
import {
  connectBroker,
  deadQueueName,
  deleteSuiteQueues,
  retryQueueName,
  type Broker,
} from '@dicomflow/broker';
import { loadConfig } from '@dicomflow/config';
import {
  jobMessageId,
  type Job,
  type JobFailed,
  type JobFinished,
  type JobRoutingKey,
  type JobStarted,
} from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { createStorage, type Storage } from '@dicomflow/storage';
import { removeBucketAndObjects, uniqueBucketName } from '@dicomflow/storage/testing';
import { testBrokerConfig, testEnvironment, testStorageConfig, waitFor } from '@dicomflow/test-helpers';
import { CONSUMER_LABEL } from '../docker/create-options.js';
import { JOB_RETRY_DELAYS_MS } from '../consumers/job-slot.js';
import { createService, type ConsumerConfig, type ConsumerService } from '../service.js';

/** `read()` once it gives an empty list, or its last answer after `timeoutMs` (a bound, not a speed test). */
export async function onceEmpty<T>(read: () => Promise<T[]>, timeoutMs = 15_000): Promise<T[]> {
  // On timeout the test asserts on what is left, which names it better than a timeout error would.
  await waitFor(async () => (await read()).length === 0, 'an empty list', timeoutMs).catch(() => undefined);
  return read();
}

/** Retry delays the tests give their consumers (their retry queues are deleted with the rest). */
export const TEST_RETRY_DELAYS_MS: readonly number[] = [300];

/** One test's isolated world: exchange, queue prefix, buckets and consumer id. */
export interface Isolation {
  readonly exchange: string;
  readonly queuePrefix: string;
  readonly buckets: { readonly incoming: string; readonly runs: string; readonly static: string };
  readonly consumerId: string;
}

export function newIsolation(): Isolation {
  const id = randomUUID().replaceAll('-', '').slice(0, 10);
  return {
    exchange: `test.consumer-${id}`,
    queuePrefix: `test.consumer-${id}.`,
    buckets: {
      incoming: uniqueBucketName('incoming'),
      runs: uniqueBucketName('runs'),
      static: uniqueBucketName('static'),
    },
    consumerId: `test-consumer-${id}`,
  };
}

/** Environment of a consumer in `isolation` against the tests' RabbitMQ, S3 and Docker engine. */
export function consumerEnvironment(isolation: Isolation): Record<string, string> {
  return {
    ...testEnvironment(),
    S3_BUCKET_INCOMING: isolation.buckets.incoming,
    S3_BUCKET_RUNS: isolation.buckets.runs,
    S3_BUCKET_STATIC: isolation.buckets.static,
    HTTP_PORT: '0',
    HTTP_HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RABBIT_EXCHANGE: isolation.exchange,
    RABBIT_QUEUE_PREFIX: isolation.queuePrefix,
    CONSUMER_ID: isolation.consumerId,
    CPUS: '1',
    GPUS: '',
  };
}

/** A consumer started in this process. */
export interface InProcessConsumer {
  readonly service: ConsumerService;
  readonly config: ConsumerConfig;
  close(): Promise<void>;
}

export async function startConsumer(
  isolation: Isolation,
  overrides: Record<string, string> = {},
): Promise<InProcessConsumer> {
  const confDir = await mkdtemp(join(tmpdir(), 'consumer-conf-'));
  const config = loadConfig('consumer', {
    confDir,
    env: { ...consumerEnvironment(isolation), ...overrides },
  });
  const service = createService(config, createLogger({ service: 'consumer-test', level: config.LOG_LEVEL }), {
    retryDelaysMs: TEST_RETRY_DELAYS_MS,
  });
  await service.start();
  return {
    service,
    config,
    async close() {
      await service.close();
      await rm(confDir, { recursive: true, force: true });
    },
  };
}

/** A job outcome or start as the test received it. */
export type Received =
  | {
      readonly routingKey: 'job.started';
      readonly messageId: string;
      readonly correlationId?: string;
      readonly body: JobStarted;
    }
  | {
      readonly routingKey: 'job.finished';
      readonly messageId: string;
      readonly correlationId?: string;
      readonly body: JobFinished;
    }
  | {
      readonly routingKey: 'job.failed';
      readonly messageId: string;
      readonly correlationId?: string;
      readonly body: JobFailed;
    };

/** The test's side: publishes jobs on the isolated exchange, collects what the consumer publishes. */
export class TestBus {
  readonly received: Received[] = [];
  readonly storage: Storage;
  readonly docker = new Docker({ socketPath: '/var/run/docker.sock' });
  readonly #cancels: (() => Promise<void>)[] = [];

  private constructor(
    readonly isolation: Isolation,
    readonly broker: Broker,
    readonly connection: amqp.ChannelModel,
    readonly channel: amqp.Channel,
  ) {
    this.storage = createStorage(testStorageConfig());
  }

  /** Connects, creates the buckets, declares the suite's queues and starts collecting job.* events. */
  static async open(isolation: Isolation): Promise<TestBus> {
    const rabbit = testBrokerConfig();
    const broker = await connectBroker({
      config: rabbit,
      logger: createLogger({ service: 'consumer-test-bus', level: 'silent' }),
      exchange: isolation.exchange,
      deadExchange: `${isolation.exchange}.dead`,
      connectionName: `consumer-test-bus-${process.pid}`,
    });
    const connection = await amqp.connect(rabbit);
    const channel = await connection.createChannel();
    const bus = new TestBus(isolation, broker, connection, channel);
    for (const bucket of Object.values(isolation.buckets)) await bus.storage.ensureBucket(bucket);
    await broker.assertSuiteQueues(isolation.queuePrefix);
    const subscription = await broker.consume(
      {
        queue: `${isolation.queuePrefix}test.events`,
        bindings: ['job.started', 'job.finished', 'job.failed'],
        prefetch: 20,
        retryDelaysMs: TEST_RETRY_DELAYS_MS,
      },
      (body, ctx) => {
        bus.received.push({
          routingKey: ctx.routingKey,
          messageId: ctx.messageId,
          ...(ctx.correlationId === undefined ? {} : { correlationId: ctx.correlationId }),
          body,
        } as Received);
        return Promise.resolve();
      },
    );
    bus.#cancels.push(() => subscription.cancel());
    return bus;
  }

  /** Publishes `job` as the scheduler would (deterministic message id, run id as correlation id). */
  async publishJob(job: Job, routingKey: JobRoutingKey = 'job.cpu'): Promise<void> {
    await this.broker.publish(routingKey, job, {
      messageId: jobMessageId(job.runId, job.step),
      correlationId: job.runId,
      priority: job.priority,
    });
  }

  /** Publishes a job body without schema validation (what a broken or hostile publisher could send). */
  async publishRawJob(body: unknown, routingKey: JobRoutingKey, messageId: string): Promise<void> {
    this.channel.publish(this.isolation.exchange, routingKey, Buffer.from(JSON.stringify(body)), {
      persistent: true,
      messageId,
      type: routingKey,
      contentType: 'application/json',
      headers: { 'schema-version': 1 },
    });
    await Promise.resolve();
  }

  /** What arrived for `runId` (and `step`), in order. */
  of(runId: string, step?: number): Received[] {
    return this.received.filter(
      (r) => r.body.runId === runId && (step === undefined || r.body.step === step),
    );
  }

  /**
   * The model log an outcome points to (`log`), read from S3 where the consumer stored it; '' when the
   * outcome names none. Outcomes never carry the log itself.
   */
  async logOf(outcome: Received): Promise<string> {
    if (outcome.routingKey === 'job.started') return '';
    expect(outcome.body).not.toHaveProperty('logExcerpt');
    const { log } = outcome.body;
    return log ? (await this.storage.getBuffer(log.bucket, log.key)).toString('utf8') : '';
  }

  /** The first outcome (finished or failed) of a job, if any arrived. */
  outcome(job: Pick<Job, 'runId' | 'step'>): Received | undefined {
    return this.of(job.runId, job.step).find((r) => r.routingKey !== 'job.started');
  }

  /** Ready messages in `queue`. */
  async messageCount(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount;
  }

  /** Containers labelled with the isolation's consumer id (any state). */
  async containers(): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({
      all: true,
      filters: { label: [`${CONSUMER_LABEL}=${this.isolation.consumerId}`] },
    });
  }

  /**
   * {@link containers} once none is left, or what is still there after `timeoutMs`: the consumer removes a
   * job's container just after publishing its outcome, so a test that saw the outcome waits for it.
   */
  async containersLeft(timeoutMs = 15_000): Promise<Docker.ContainerInfo[]> {
    return onceEmpty(() => this.containers(), timeoutMs);
  }

  /** Stops collecting, deletes the isolation's queues, exchanges and buckets, and its containers. */
  async cleanup(): Promise<void> {
    for (const cancel of this.#cancels.splice(0)) await cancel().catch(() => undefined);
    await this.broker.close();
    const { queuePrefix, exchange } = this.isolation;
    const channel = await this.connection.createChannel();
    await deleteSuiteQueues(channel, queuePrefix, [...TEST_RETRY_DELAYS_MS, ...JOB_RETRY_DELAYS_MS]);
    const events = `${queuePrefix}test.events`;
    await channel.deleteQueue(events);
    await channel.deleteQueue(deadQueueName(events));
    await channel.deleteQueue(retryQueueName(events, TEST_RETRY_DELAYS_MS[0] ?? 300));
    await channel.deleteExchange(exchange);
    await channel.deleteExchange(`${exchange}.dead`);
    await this.connection.close();
    for (const info of await this.containers())
      await this.docker
        .getContainer(info.Id)
        .remove({ force: true })
        .catch(() => undefined);
    for (const bucket of Object.values(this.isolation.buckets))
      await removeBucketAndObjects(this.storage, bucket);
  }
}

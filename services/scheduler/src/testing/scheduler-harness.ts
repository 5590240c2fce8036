import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import pg from 'pg';
import {
  type Broker,
  connectBroker,
  deadQueueName,
  deleteSuiteQueues,
  type DeliveryContext,
  retryQueueName,
} from '@dicomflow/broker';
import { loadConfig } from '@dicomflow/config';
import {
  jobFailedMessageId,
  jobFinishedMessageId,
  type FlowFailed,
  type FlowFinished,
  type FlowMatched,
  type Job,
  type JobFailed,
  type JobRoutingKey,
} from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { testBrokerConfig, testEnvironment } from '@dicomflow/test-helpers';
import { schedulerQueues, SCHEDULER_RETRY_DELAYS_MS, type SchedulerQueues } from '../queues.js';
import { createService, type SchedulerConfig, type SchedulerService } from '../service.js';

/** Retry delays of the test's own consumers (their retry queues are deleted with the rest). */
const TEST_RETRY_DELAYS_MS: readonly number[] = [200];

/** Names of one test's isolated world: its exchange, queue prefix and database schema. */
export interface Isolation {
  readonly exchange: string;
  readonly queuePrefix: string;
  readonly schema: string;
  readonly queues: SchedulerQueues;
}

export function newIsolation(): Isolation {
  const id = randomUUID().replaceAll('-', '').slice(0, 10);
  const queuePrefix = `test.sched-${id}.`;
  return {
    exchange: `test.sched-${id}`,
    queuePrefix,
    schema: `sched_test_${id}`,
    queues: schedulerQueues(queuePrefix),
  };
}

/** Environment for a scheduler in `isolation` against the real RabbitMQ and PostgreSQL of the tests. */
export function schedulerEnvironment(isolation: Isolation): Record<string, string> {
  return {
    ...testEnvironment(),
    S3_BUCKET_RUNS: 'runs',
    HTTP_PORT: '0',
    HTTP_HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RABBIT_EXCHANGE: isolation.exchange,
    RABBIT_QUEUE_PREFIX: isolation.queuePrefix,
    SCHEDULER_DB_SCHEMA: isolation.schema,
  };
}

/** A scheduler started in this process. */
export interface InProcessScheduler {
  readonly service: SchedulerService;
  readonly config: SchedulerConfig;
  close(): Promise<void>;
}

export async function startScheduler(
  isolation: Isolation,
  overrides: Record<string, string> = {},
): Promise<InProcessScheduler> {
  const confDir = await mkdtemp(join(tmpdir(), 'scheduler-conf-'));
  const config = loadConfig('scheduler', {
    confDir,
    env: { ...schedulerEnvironment(isolation), ...overrides },
  });
  const service = createService(config, createLogger({ service: 'scheduler-test', level: config.LOG_LEVEL }));
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

/** One job message as the test consumer received it. */
export interface JobDelivery {
  readonly messageId: string;
  readonly correlationId: string | undefined;
  readonly routingKey: JobRoutingKey;
  readonly priority: number;
  readonly body: Job;
}

/** A run outcome as the test received it. */
export type Outcome =
  | { readonly routingKey: 'flow.finished'; readonly messageId: string; readonly body: FlowFinished }
  | { readonly routingKey: 'flow.failed'; readonly messageId: string; readonly body: FlowFailed };

/** What the test consumer does with a job it takes for the first time. */
export type JobAction =
  | { readonly kind: 'finish' }
  | { readonly kind: 'fail'; readonly failure: Pick<JobFailed, 'reason' | 'message' | 'exitCode'> };

/**
 * The test's side of the message flow on its isolated exchange: publishes what the fingerprinter and the
 * consumer would, plays the consumer (dedupes jobs by message id, as the contract asks), collects outcomes.
 */
export class TestBus {
  /** Every job delivery, in the order they arrived (repeats included). */
  readonly deliveries: JobDelivery[] = [];
  /** Jobs acted on: one per message id. */
  readonly ran = new Map<string, JobDelivery>();
  readonly outcomes: Outcome[] = [];
  readonly #cancels: (() => Promise<void>)[] = [];

  private constructor(
    readonly isolation: Isolation,
    readonly broker: Broker,
    readonly connection: amqp.ChannelModel,
    readonly channel: amqp.Channel,
  ) {}

  static async open(isolation: Isolation): Promise<TestBus> {
    const rabbit = testBrokerConfig();
    const broker = await connectBroker({
      config: rabbit,
      logger: createLogger({ service: 'scheduler-test-bus', level: 'silent' }),
      exchange: isolation.exchange,
      deadExchange: `${isolation.exchange}.dead`,
      connectionName: `scheduler-test-bus-${process.pid}`,
    });
    const connection = await amqp.connect(rabbit);
    const channel = await connection.createChannel();
    return new TestBus(isolation, broker, connection, channel);
  }

  /** Starts collecting `flow.finished` and `flow.failed` (before publishing anything). */
  async collectOutcomes(): Promise<void> {
    const queue = `${this.isolation.queuePrefix}test.outcomes`;
    const subscription = await this.broker.consume(
      {
        queue,
        bindings: ['flow.finished', 'flow.failed'],
        prefetch: 20,
        retryDelaysMs: TEST_RETRY_DELAYS_MS,
      },
      (body, ctx) => {
        this.outcomes.push({ routingKey: ctx.routingKey, messageId: ctx.messageId, body } as Outcome);
        return Promise.resolve();
      },
    );
    this.#cancels.push(() => subscription.cancel());
  }

  /**
   * Plays the consumer on both job queues: records every delivery; a message id seen before is only acked
   * (the dedupe the contract asks of consumers); a new one is acted on as `decide` says (default: finish),
   * its outcome published `outcomeCopies` times (default once; more plays a consumer whose ack was lost).
   */
  async startConsumer(
    decide: (job: Job) => JobAction = () => ({ kind: 'finish' }),
    opts: { outcomeCopies?: number } = {},
  ): Promise<void> {
    for (const routingKey of ['job.cpu', 'job.gpu'] as const) {
      const subscription = await this.broker.consume(
        {
          queue: this.isolation.queues.jobs[routingKey],
          bindings: [routingKey],
          prefetch: 1,
          retryDelaysMs: TEST_RETRY_DELAYS_MS,
        },
        async (body, ctx) => {
          await this.#onJob(routingKey, body, ctx, decide, opts.outcomeCopies ?? 1);
        },
      );
      this.#cancels.push(() => subscription.cancel());
    }
  }

  async publishFlowMatched(run: FlowMatched): Promise<void> {
    await this.broker.publish('flow.matched', run, { correlationId: run.runId, priority: run.priority });
  }

  /** Publishes the `job.finished` of `job` (its output where the job said), with the contract's message id. */
  async publishJobFinished(job: Job, messageId = jobFinishedMessageId(job.runId, job.step)): Promise<void> {
    await this.broker.publish(
      'job.finished',
      { runId: job.runId, step: job.step, output: job.output, exitCode: 0 },
      { messageId, correlationId: job.runId, priority: 5 },
    );
  }

  async publishJobFailed(
    job: Job,
    failure: Pick<JobFailed, 'reason' | 'message' | 'exitCode'>,
  ): Promise<void> {
    await this.broker.publish(
      'job.failed',
      { runId: job.runId, step: job.step, ...failure },
      { messageId: jobFailedMessageId(job.runId, job.step), correlationId: job.runId, priority: 5 },
    );
  }

  /** Ready messages in `queue`. */
  async messageCount(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount;
  }

  /** Takes (and acks) the next ready message of `queue`, if any. */
  async take(queue: string): Promise<amqp.GetMessage | false> {
    return this.channel.get(queue, { noAck: true });
  }

  outcomesOf(runId: string): Outcome[] {
    return this.outcomes.filter((outcome) => outcome.body.runId === runId);
  }

  deliveriesOf(runId: string): JobDelivery[] {
    return this.deliveries.filter((delivery) => delivery.body.runId === runId);
  }

  /** Stops consuming, deletes every queue and exchange of the isolation, drops its schema. */
  async cleanup(): Promise<void> {
    for (const cancel of this.#cancels.splice(0)) await cancel().catch(() => undefined);
    await this.broker.close();
    const { queues, queuePrefix, exchange, schema } = this.isolation;
    const channel = await this.connection.createChannel();
    const work = [queues.flowMatched, queues.jobFinished, queues.jobFailed];
    const mine = [...Object.values(queues.jobs), `${queuePrefix}test.outcomes`];
    for (const queue of [...work, ...mine]) {
      await channel.deleteQueue(queue);
      await channel.deleteQueue(deadQueueName(queue));
    }
    for (const queue of work)
      for (const delay of SCHEDULER_RETRY_DELAYS_MS) await channel.deleteQueue(retryQueueName(queue, delay));
    for (const queue of mine)
      for (const delay of TEST_RETRY_DELAYS_MS) await channel.deleteQueue(retryQueueName(queue, delay));
    // The rest of the suite's queues, which the scheduler declares too.
    await deleteSuiteQueues(channel, queuePrefix);
    await channel.deleteExchange(exchange);
    await channel.deleteExchange(`${exchange}.dead`);
    await this.connection.close();
    await withDatabase(this.isolation, (client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  }

  async #onJob(
    routingKey: JobRoutingKey,
    body: Job,
    ctx: DeliveryContext,
    decide: (job: Job) => JobAction,
    copies: number,
  ): Promise<void> {
    const delivery: JobDelivery = {
      messageId: ctx.messageId,
      correlationId: ctx.correlationId,
      routingKey,
      priority: ctx.priority,
      body,
    };
    this.deliveries.push(delivery);
    if (this.ran.has(ctx.messageId)) return;
    this.ran.set(ctx.messageId, delivery);
    const action = decide(body);
    for (let copy = 0; copy < copies; copy++) {
      if (action.kind === 'finish') await this.publishJobFinished(body);
      else await this.publishJobFailed(body, action.failure);
    }
  }
}

/** Runs `work` with a connection to the test database. */
export async function withDatabase<T>(
  isolation: Isolation,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const env = schedulerEnvironment(isolation);
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

/** The scheduler's recorded dispatches of the isolation: message id -> state. */
export async function recordedDispatches(isolation: Isolation): Promise<Map<string, string>> {
  return withDatabase(isolation, async (client) => {
    const { rows } = await client.query<{ message_id: string; state: string }>(
      `SELECT message_id, state FROM "${isolation.schema}".dispatches`,
    );
    return new Map(rows.map((row) => [row.message_id, row.state]));
  });
}

export { metricValue, readMetrics } from '@dicomflow/test-helpers';

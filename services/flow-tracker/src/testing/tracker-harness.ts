import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import pg from 'pg';
import { connectBroker, deleteSuiteQueues, DEFAULT_RETRY_DELAYS_MS, type Broker } from '@dicomflow/broker';
import { loadConfig } from '@dicomflow/config';
import { createLogger } from '@dicomflow/runtime';
import { testBrokerConfig, testEnvironment } from '@dicomflow/test-helpers';
import { createService, type FlowTrackerConfig, type FlowTrackerService } from '../service.js';
import type { StoryEvent } from './run-story.js';

/** Names of one test's isolated world: exchange, queue prefix, database schema. */
export interface Isolation {
  readonly exchange: string;
  readonly queuePrefix: string;
  readonly schema: string;
}

export function newIsolation(): Isolation {
  const id = randomUUID().replaceAll('-', '').slice(0, 10);
  return { exchange: `test.tracker-${id}`, queuePrefix: `test.tracker-${id}.`, schema: `tracker_test_${id}` };
}

/** A pool on the tests' database. */
export function testPool(): pg.Pool {
  const env = testEnvironment();
  return new pg.Pool({
    host: env.DB_HOST,
    port: Number(env.DB_PORT),
    database: env.DB_NAME,
    user: env.DB_USER,
    password: env.DB_PASS,
    max: 2,
  });
}

/** The API token the trackers of the tests run with. */
export const TEST_API_TOKEN = 'tracker-test-token';

/** A flow-tracker started in this process. */
export interface InProcessTracker {
  readonly service: FlowTrackerService;
  readonly config: FlowTrackerConfig;
  readonly baseUrl: string;
  /** `fetch` of an API path (`/runs/...`) with the tracker's bearer token. */
  api(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

export async function startTracker(
  isolation: Isolation,
  overrides: Record<string, string> = {},
): Promise<InProcessTracker> {
  const confDir = await mkdtemp(join(tmpdir(), 'tracker-conf-'));
  const config = loadConfig('flow-tracker', {
    confDir,
    env: {
      ...testEnvironment(),
      HTTP_PORT: '0',
      HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      RABBIT_EXCHANGE: isolation.exchange,
      RABBIT_QUEUE_PREFIX: isolation.queuePrefix,
      TRACKER_DB_SCHEMA: isolation.schema,
      TRACKER_API_TOKEN: TEST_API_TOKEN,
      ...overrides,
    },
  });
  const service = createService(config, createLogger({ service: 'tracker-test', level: config.LOG_LEVEL }));
  await service.start();
  return {
    service,
    config,
    baseUrl: `http://127.0.0.1:${service.httpPort()}`,
    api: (path, init = {}) =>
      fetch(`http://127.0.0.1:${service.httpPort()}${path}`, {
        ...init,
        headers: {
          ...(init.headers as Record<string, string> | undefined),
          authorization: `Bearer ${config.TRACKER_API_TOKEN}`,
        },
      }),
    async close() {
      await service.close();
      await rm(confDir, { recursive: true, force: true });
    },
  };
}

/** Publishes events on the isolation's exchange as the suite's services would. */
export class TestPublisher {
  private constructor(
    readonly isolation: Isolation,
    readonly broker: Broker,
  ) {}

  static async open(isolation: Isolation): Promise<TestPublisher> {
    const broker = await connectBroker({
      config: testBrokerConfig(),
      logger: createLogger({ service: 'tracker-test-publisher', level: 'silent' }),
      exchange: isolation.exchange,
      deadExchange: `${isolation.exchange}.dead`,
      connectionName: `tracker-test-publisher-${process.pid}`,
    });
    await broker.assertSuiteQueues(isolation.queuePrefix);
    return new TestPublisher(isolation, broker);
  }

  /** Publishes each event (confirmed) in the given order, with its message id. */
  async publish(events: readonly StoryEvent[]): Promise<void> {
    for (const { messageId, event } of events) {
      const correlationId = event.routingKey === 'study.received' ? messageId : event.body.runId;
      await this.broker.publish(event.routingKey, event.body, { messageId, correlationId });
    }
  }

  /** Closes the publisher, deletes the isolation's queues and exchanges and drops its schema. */
  async cleanup(pool: pg.Pool): Promise<void> {
    await this.broker.close();
    const connection = await amqp.connect(testBrokerConfig());
    try {
      const channel = await connection.createChannel();
      await deleteSuiteQueues(channel, this.isolation.queuePrefix, DEFAULT_RETRY_DELAYS_MS);
      await channel.deleteExchange(this.isolation.exchange);
      await channel.deleteExchange(`${this.isolation.exchange}.dead`);
    } finally {
      await connection.close();
    }
    await pool.query(`DROP SCHEMA IF EXISTS "${this.isolation.schema}" CASCADE`);
  }
}

/** The rows the tracker keeps about runs (every column but updated_at), in a stable order, for comparison. */
export async function runTables(pool: pg.Pool, schema: string, runIds: readonly string[]): Promise<unknown> {
  const runs = await pool.query(`SELECT * FROM "${schema}".runs WHERE id = ANY($1::uuid[]) ORDER BY id`, [
    runIds,
  ]);
  const steps = await pool.query(
    `SELECT * FROM "${schema}".steps WHERE run_id = ANY($1::uuid[]) ORDER BY run_id, step`,
    [runIds],
  );
  return {
    runs: runs.rows.map((row: Record<string, unknown>) => {
      const { updated_at: _updatedAt, ...rest } = row;
      return rest;
    }),
    steps: steps.rows,
  };
}

/** The row of `runId` in the runs table. */
export async function runRow(
  pool: pg.Pool,
  schema: string,
  runId: string,
): Promise<Record<string, unknown> | undefined> {
  const { rows } = await pool.query<Record<string, unknown>>(`SELECT * FROM "${schema}".runs WHERE id = $1`, [
    runId,
  ]);
  return rows[0];
}

/** The events the tracker handled so far (new and repeated), from its /metrics. */
export async function eventsHandled(baseUrl: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('dicomflow_tracker_events_total{')) total += Number(line.split(' ').pop());
  return total;
}

import { connectBroker, TransientError, type Broker, type Subscription } from '@dicomflow/broker';
import { brokerConfigFrom, type ConfigOf, exchangesFrom, storageConfigFrom } from '@dicomflow/config';
import {
  createHttpServer,
  createJanitorCounter,
  createMetricsRegistry,
  type HttpServer,
  type Janitor,
  type Logger,
  retryUntilDone,
  shutdownStep,
  startJanitor,
} from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { consumeFlowMatched } from './consumers/flow-matched.js';
import { consumeJobFailed } from './consumers/job-failed.js';
import { consumeJobFinished } from './consumers/job-finished.js';
import type { HandlerDeps } from './consumers/settle.js';
import { migrate } from './db/migrations.js';
import { createPool } from './db/pool.js';
import { RunStore } from './db/run-store.js';
import { Dispatcher } from './dispatch/dispatcher.js';
import { runJanitorOnce } from './janitor.js';
import { createSchedulerMetrics } from './metrics.js';
import { schedulerQueues } from './queues.js';

export type SchedulerConfig = ConfigOf<'scheduler'>;

/** The scheduler, started and stopped as one. */
export interface SchedulerService {
  /**
   * Serves HTTP, connects to RabbitMQ and PostgreSQL (waiting for them), applies the database migrations,
   * declares the suite's queues, publishes dispatches a crash left pending, then consumes.
   */
  start(): Promise<void>;
  /** Stops consuming, lets running handlers finish (bounded), then disconnects. Idempotent. */
  close(): Promise<void>;
  /** The bound HTTP port, once started (useful when configured as 0). */
  httpPort(): number;
}

/** How often pending dispatches (left by a failure) are looked for while running. */
const SWEEP_INTERVAL_MS = 30_000;

/** Builds the scheduler from its configuration. Nothing is opened until `start()`. */
export function createService(config: SchedulerConfig, logger: Logger): SchedulerService {
  const registry = createMetricsRegistry('scheduler');
  const pool = createPool(config, logger.child({ component: 'db' }));
  const store = new RunStore(pool, config.SCHEDULER_DB_SCHEMA, config.S3_BUCKET_RUNS);
  const metrics = createSchedulerMetrics(registry, () => store.runCounts());
  const janitorCounter = createJanitorCounter(registry);
  const queues = schedulerQueues(config.RABBIT_QUEUE_PREFIX);
  const stopping = new AbortController();
  let broker: Broker | undefined;
  const subscriptions: Subscription[] = [];
  let consuming = false;
  const dispatcher = new Dispatcher({
    store,
    broker: () => {
      if (!broker) throw new TransientError('not connected to RabbitMQ yet');
      return broker;
    },
    metrics,
    logger: logger.child({ component: 'dispatch' }),
  });
  const deps: HandlerDeps = { store, dispatcher, metrics };
  const http: HttpServer = createHttpServer({
    logger,
    port: config.HTTP_PORT,
    host: config.HTTP_HOST,
    registry,
    checks: [
      {
        name: 'broker',
        check: async () => (broker ? broker.check() : Promise.reject(new Error('not connected yet'))),
      },
      { name: 'db', check: () => store.check() },
    ],
    details: () => ({ consuming, queues: [queues.flowMatched, queues.jobFinished, queues.jobFailed] }),
  });
  let port = 0;
  let started = false;
  let closing: Promise<void> | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> | undefined;
  let janitor: Janitor | undefined;

  const sweep = (): Promise<void> => {
    sweeping ??= dispatcher
      .sweep()
      .then(
        () => undefined,
        (err: unknown) => {
          logger.warn({ err }, 'publishing pending dispatches failed; retrying at the next sweep');
        },
      )
      .finally(() => {
        sweeping = undefined;
      });
    return sweeping;
  };

  const untilDone = retryUntilDone({ logger, signal: stopping.signal });

  const startInOrder = async (): Promise<void> => {
    ({ port } = await http.listen());
    broker = await connectBroker({
      config: brokerConfigFrom(config),
      logger: logger.child({ component: 'broker' }),
      ...exchangesFrom(config),
      appId: 'scheduler',
      connectionName: `scheduler-${process.pid}`,
      signal: stopping.signal,
    });
    const connected = broker;
    await untilDone('preparing the database', () =>
      migrate(pool, config.SCHEDULER_DB_SCHEMA, logger.child({ component: 'db' })),
    );
    // Every queue of the suite, so that no job or outcome is unroutable before its consumer first starts.
    await untilDone('declaring the queues', () => connected.assertSuiteQueues(config.RABBIT_QUEUE_PREFIX));
    await sweep();
    subscriptions.push(await consumeFlowMatched(connected, queues.flowMatched, deps));
    subscriptions.push(await consumeJobFinished(connected, queues.jobFinished, deps));
    subscriptions.push(await consumeJobFailed(connected, queues.jobFailed, deps));
    if (stopping.signal.aborted) return;
    consuming = true;
    sweepTimer = setInterval(() => void sweep(), SWEEP_INTERVAL_MS);
    const storage = createStorage(storageConfigFrom(config));
    janitor = startJanitor({
      intervalMs: config.JANITOR_INTERVAL * 1000,
      logger,
      runOnce: (signal) =>
        runJanitorOnce({
          pool,
          schema: config.SCHEDULER_DB_SCHEMA,
          storage,
          buckets: { incoming: config.S3_BUCKET_INCOMING, runs: config.S3_BUCKET_RUNS },
          retention: {
            receipts: config.RETENTION_RECEIPTS,
            runOutputs: config.RETENTION_RUN_OUTPUTS,
            rows: config.RETENTION_ROWS,
            uploads: config.RETENTION_UPLOADS,
          },
          counter: janitorCounter,
          logger: logger.child({ component: 'janitor' }),
          signal,
        }),
    });
    logger.info(
      {
        httpPort: port,
        schema: config.SCHEDULER_DB_SCHEMA,
        exchange: config.RABBIT_EXCHANGE,
        jobs: queues.jobs,
      },
      'scheduler started',
    );
  };

  return {
    async start() {
      started = true;
      try {
        await startInOrder();
      } catch (err) {
        // Stopped while starting: close() releases what was opened; nothing failed.
        if (stopping.signal.aborted) return;
        throw err;
      }
    },

    close() {
      closing ??= (async () => {
        stopping.abort();
        if (!started) return;
        const step = shutdownStep(logger);
        clearInterval(sweepTimer);
        consuming = false;
        await step('consumers', async () => {
          for (const subscription of subscriptions.splice(0)) await subscription.cancel();
        });
        await step('sweep', async () => {
          await sweeping;
        });
        await step('janitor', async () => {
          await janitor?.stop();
        });
        await step('broker', async () => {
          await broker?.close();
        });
        await step('database', () => pool.end());
        await step('http', () => http.close());
        logger.info('scheduler stopped');
      })();
      return closing;
    },

    httpPort: () => port,
  };
}

import { connectBroker, suiteQueues, type Broker, type Subscription } from '@dicomflow/broker';
import {
  brokerConfigFrom,
  exchangesFrom,
  type FlowTrackerConfig,
  storageConfigFrom,
} from '@dicomflow/config';
import {
  createHttpServer,
  createJanitorCounter,
  createMetricsRegistry,
  type HttpServer,
  type Janitor,
  type Logger,
  PermanentError,
  retryUntilDone,
  shutdownStep,
  startJanitor,
} from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { requireApiToken } from './api/api-auth.js';
import { registerRecoveryRoutes } from './api/recovery-routes.js';
import { registerProvenanceRoutes } from './api/provenance-routes.js';
import { registerRunRoutes } from './api/runs-routes.js';
import { registerStudyRoutes } from './api/studies-routes.js';
import { consumeTrackerEvents } from './consumers/tracker-events.js';
import { createDataSource, createTrackerPool, migrate } from './db/data-source.js';
import { EventStore } from './events/event-store.js';
import { runJanitorOnce } from './janitor.js';
import { createTrackerMetrics } from './metrics.js';

export type { FlowTrackerConfig };

/** The flow-tracker, started and stopped as one. */
export interface FlowTrackerService {
  /**
   * Serves HTTP, connects to PostgreSQL (applying migrations) and RabbitMQ (waiting for both), then consumes
   * every event.
   */
  start(): Promise<void>;
  /** Stops consuming, lets running handlers finish (bounded), then disconnects. Idempotent. */
  close(): Promise<void>;
  /** The bound HTTP port, once started (useful when configured as 0). */
  httpPort(): number;
}

/** Checks what the configuration cannot check key by key. */
function checkConfig(config: FlowTrackerConfig): void {
  if (config.PATIENT_COLUMN === 'pseudonym' && config.PATIENT_PSEUDONYM_KEY.length < 16)
    throw new PermanentError(
      'PATIENT_COLUMN is pseudonym but PATIENT_PSEUDONYM_KEY is shorter than 16 characters: set a long random secret (PATIENT_PSEUDONYM_KEY_FILE)',
    );
}

/** Builds the flow-tracker from its configuration. Nothing is opened until `start()`. */
export function createService(config: FlowTrackerConfig, logger: Logger): FlowTrackerService {
  checkConfig(config);
  const registry = createMetricsRegistry('flow-tracker');
  const metrics = createTrackerMetrics(registry);
  const storage = createStorage(storageConfigFrom(config));
  const dataSource = createDataSource(config);
  const pool = createTrackerPool(config, logger.child({ component: 'db' }));
  const janitorCounter = createJanitorCounter(registry);
  let janitor: Janitor | undefined;
  const store = new EventStore(dataSource);
  const queue = suiteQueues(config.RABBIT_QUEUE_PREFIX).flowTracker;
  const stopping = new AbortController();
  let broker: Broker | undefined;
  let subscription: Subscription | undefined;

  const http: HttpServer = createHttpServer({
    logger,
    port: config.HTTP_PORT,
    host: config.HTTP_HOST,
    registry,
    checks: [
      {
        name: 'broker',
        check: async () => {
          if (!broker) throw new Error('not connected yet');
          await broker.check();
          if (!subscription) throw new Error(`not consuming ${queue.name} yet`);
        },
      },
      {
        name: 'db',
        check: async () => {
          if (!dataSource.isInitialized) throw new Error('not connected yet');
          await store.check();
        },
      },
      ...(config.PATIENT_COLUMN === 'none' ? [] : [{ name: 's3', check: () => storage.check() }]),
    ],
    details: () => ({
      queue: queue.name,
      schema: config.TRACKER_DB_SCHEMA,
      consuming: subscription !== undefined,
    }),
  });
  requireApiToken(http.app, config.TRACKER_API_TOKEN);
  registerRunRoutes(http.app, dataSource);
  registerStudyRoutes(http.app, dataSource);
  registerProvenanceRoutes(http.app, dataSource);
  registerRecoveryRoutes(http.app, {
    dataSource,
    storage,
    broker: () => broker,
    logger: logger.child({ component: 'api' }),
  });

  let port = 0;
  let started = false;
  let closing: Promise<void> | undefined;

  const untilDone = retryUntilDone({ logger, signal: stopping.signal });

  const startInOrder = async (): Promise<void> => {
    ({ port } = await http.listen());
    await untilDone('connecting to PostgreSQL', async () => {
      if (!dataSource.isInitialized) await dataSource.initialize();
    });
    await untilDone('migrating the database', () =>
      migrate(pool, config.TRACKER_DB_SCHEMA, logger.child({ component: 'db' })),
    );
    broker = await connectBroker({
      config: brokerConfigFrom(config),
      logger: logger.child({ component: 'broker' }),
      ...exchangesFrom(config),
      appId: 'flow-tracker',
      connectionName: `flow-tracker-${process.pid}`,
      signal: stopping.signal,
    });
    const connected = broker;
    await untilDone('declaring the suite queues', () =>
      connected.assertSuiteQueues(config.RABBIT_QUEUE_PREFIX),
    );
    subscription = await consumeTrackerEvents(connected, queue, {
      store,
      storage,
      patient: { mode: config.PATIENT_COLUMN, pseudonymKey: config.PATIENT_PSEUDONYM_KEY },
      metrics,
      logger: logger.child({ component: 'events' }),
    });
    janitor = startJanitor({
      intervalMs: config.JANITOR_INTERVAL * 1000,
      logger,
      runOnce: (signal) =>
        runJanitorOnce({
          pool,
          schema: config.TRACKER_DB_SCHEMA,
          retention: { events: config.RETENTION_EVENTS, runs: config.RETENTION_RUNS },
          counter: janitorCounter,
          logger: logger.child({ component: 'janitor' }),
          signal,
        }),
    });
    logger.info(
      {
        httpPort: port,
        schema: config.TRACKER_DB_SCHEMA,
        queue: queue.name,
        patientColumn: config.PATIENT_COLUMN,
      },
      'flow-tracker started',
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
        await step('consumer', async () => {
          await subscription?.cancel();
          subscription = undefined;
        });
        await step('janitor', async () => {
          await janitor?.stop();
        });
        await step('broker', async () => {
          await broker?.close();
        });
        await step('http', () => http.close());
        await step('database', async () => {
          if (dataSource.isInitialized) await dataSource.destroy();
        });
        await step('database pool', () => pool.end());
        logger.info('flow-tracker stopped');
      })();
      return closing;
    },

    httpPort: () => port,
  };
}

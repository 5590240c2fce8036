import { mkdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { connectBroker, suiteQueues, type Broker, type Subscription } from '@dicomflow/broker';
import { brokerConfigFrom, type ConfigOf, exchangesFrom, storageConfigFrom } from '@dicomflow/config';
import {
  createHttpServer,
  createJanitorCounter,
  createMetricsRegistry,
  type HttpServer,
  type Janitor,
  type Logger,
  readTlsFiles,
  retryUntilDone,
  shutdownStep,
  startJanitor,
} from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { consumeFlowFinished } from './consumers/flow-finished.js';
import { AckStore } from './db/ack-store.js';
import { DeliveryStore } from './db/delivery-store.js';
import { migrate } from './db/migrations.js';
import { createPool } from './db/pool.js';
import { withRunLock } from './db/run-lock.js';
import { runJanitorOnce } from './janitor.js';
import { createSenderMetrics } from './metrics.js';

export type SenderConfig = ConfigOf<'sender'>;

/** The sender, started and stopped as one. */
export interface SenderService {
  /** Serves HTTP, connects to RabbitMQ and PostgreSQL (waiting for them), migrates, then consumes. */
  start(): Promise<void>;
  /** Stops consuming, lets running sends finish (bounded), then disconnects. Idempotent. */
  close(): Promise<void>;
  /** The bound HTTP port, once started (useful when configured as 0). */
  httpPort(): number;
}

/** Builds the sender from its configuration. Nothing is opened until `start()`. */
export function createService(config: SenderConfig, logger: Logger): SenderService {
  const registry = createMetricsRegistry('sender');
  const metrics = createSenderMetrics(registry);
  const janitorCounter = createJanitorCounter(registry);
  const pool = createPool(config, logger.child({ component: 'db' }));
  const acks = new AckStore(pool, config.SENDER_DB_SCHEMA);
  const storage = createStorage(storageConfigFrom(config));
  // Read now, so a missing or wrong SEND_TLS_* file stops the start with a message naming it.
  const dimseTls = readTlsFiles(
    { ca: config.SEND_TLS_CA_FILE, cert: config.SEND_TLS_CERT, key: config.SEND_TLS_KEY },
    'DICOM destinations',
  );
  const queue = suiteQueues(config.RABBIT_QUEUE_PREFIX).sender.name;
  // One folder per host name: replicas sharing a volume (each its own container host name) never clear
  // each other's files.
  const spoolDir = join(config.SENDER_SPOOL_DIR, hostname());
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
        check: async () => (broker ? broker.check() : Promise.reject(new Error('not connected yet'))),
      },
      { name: 'db', check: () => acks.check() },
      { name: 's3', check: () => storage.check() },
    ],
    details: () => ({ consuming: subscription !== undefined, queue }),
  });
  let port = 0;
  let started = false;
  let closing: Promise<void> | undefined;
  let janitor: Janitor | undefined;

  const untilDone = retryUntilDone({ logger, signal: stopping.signal });

  const startInOrder = async (): Promise<void> => {
    ({ port } = await http.listen());
    // Folders a crashed sender left behind are only copies of S3 objects: this process's folder starts empty.
    await rm(spoolDir, { recursive: true, force: true });
    await mkdir(spoolDir, { recursive: true });
    broker = await connectBroker({
      config: brokerConfigFrom(config),
      logger: logger.child({ component: 'broker' }),
      ...exchangesFrom(config),
      appId: 'sender',
      connectionName: `sender-${process.pid}`,
      signal: stopping.signal,
    });
    const connected = broker;
    await untilDone('declaring the suite queues', () =>
      connected.assertSuiteQueues(config.RABBIT_QUEUE_PREFIX),
    );
    await untilDone('preparing the database', () =>
      migrate(pool, config.SENDER_DB_SCHEMA, logger.child({ component: 'db' })),
    );
    subscription = await consumeFlowFinished(connected, queue, {
      storage,
      acks,
      deliveries: new DeliveryStore(pool, config.SENDER_DB_SCHEMA),
      lockRun: (runId, work) => withRunLock(pool, config.SENDER_DB_SCHEMA, runId, stopping.signal, work),
      callingAeTitle: config.SENDER_AE_TITLE,
      spoolDir,
      retry: {
        maxAttempts: config.SEND_MAX_ATTEMPTS,
        initialMs: config.SEND_RETRY_INITIAL_MS,
        maxMs: config.SEND_RETRY_MAX_MS,
        timeoutMs: config.SEND_TIMEOUT_MS,
      },
      dimseTls,
      stow: {
        tokenDir: config.SENDER_TOKEN_DIR,
        caFile: config.SEND_TLS_CA_FILE,
        batchInstances: config.SEND_STOW_BATCH_INSTANCES,
        batchBytes: config.SEND_STOW_BATCH_BYTES,
      },
      signal: stopping.signal,
      onStored: () => {
        metrics.instancesStored.inc();
      },
    });
    janitor = startJanitor({
      intervalMs: config.JANITOR_INTERVAL * 1000,
      logger,
      runOnce: (signal) =>
        runJanitorOnce({
          pool,
          schema: config.SENDER_DB_SCHEMA,
          storage,
          retention: { runOutputs: config.RETENTION_RUN_OUTPUTS, rows: config.RETENTION_ROWS },
          counter: janitorCounter,
          logger: logger.child({ component: 'janitor' }),
          signal,
        }),
    });
    logger.info(
      { httpPort: port, schema: config.SENDER_DB_SCHEMA, exchange: config.RABBIT_EXCHANGE, queue },
      'sender started',
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
        if (!started) {
          stopping.abort();
          return;
        }
        const step = shutdownStep(logger);
        // Sends in progress finish their current instance; a backoff wait ends at once (the message is
        // retried, and acknowledged instances are not sent again).
        stopping.abort();
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
        await step('database', () => pool.end());
        await step('http', () => http.close());
        logger.info('sender stopped');
      })();
      return closing;
    },

    httpPort: () => port,
  };
}

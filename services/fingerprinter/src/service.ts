import { connectBroker, suiteQueues, type Broker, type Subscription } from '@dicomflow/broker';
import { brokerConfigFrom, type ConfigOf, exchangesFrom, storageConfigFrom } from '@dicomflow/config';
import {
  createHttpServer,
  createMetricsRegistry,
  DirectoryWatcher,
  type HttpServer,
  type Logger,
  retryUntilDone,
  shutdownStep,
} from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { FlowCatalog } from './flows/flow-catalog.js';
import { reportOf } from './flows/flow-snapshot.js';
import { flowRerunHandler } from './matching/flow-rerun-handler.js';
import { studyReceivedHandler } from './matching/study-received-handler.js';
import { createFingerprinterMetrics } from './metrics.js';

export type FingerprinterConfig = ConfigOf<'fingerprinter'>;

/** The work queue of `study.received` (without prefix), shared by every fingerprinter replica. */
export const STUDY_RECEIVED_QUEUE = suiteQueues().fingerprinter.name;

/** Tuning that is not configuration (tests change it). */
export interface FingerprinterOptions {
  /**
   * Work queue to consume, for tests that run the fingerprinter alone (default: the suite's, with
   * RABBIT_QUEUE_PREFIX). With it set, the service declares only this queue, not the suite's.
   */
  readonly queue?: string;
  /** Message and dead-letter exchanges (default RABBIT_EXCHANGE and `<it>.dead`). */
  readonly exchanges?: { readonly exchange: string; readonly deadExchange: string };
  /** Receipts handled at once (default 4). */
  readonly prefetch?: number;
  /** Delays between retries of a transiently failing receipt (default: the broker's). */
  readonly retryDelaysMs?: readonly number[];
  /** Attempts before a transiently failing receipt is dead-lettered (default: the broker's). */
  readonly maxAttempts?: number;
  /** Quiet time after a change in the flow directory before it is reloaded (default 250 ms). */
  readonly reloadDebounceMs?: number;
  /** Full rescan interval of the flow directory, whatever the change events say (default 30 s). */
  readonly rescanMs?: number;
}

/** The fingerprinter, started and stopped as one. */
export interface FingerprinterService {
  start(): Promise<void>;
  /** Stops consuming, lets running receipts finish (bounded), then disconnects. Idempotent. */
  close(): Promise<void>;
  /** The bound HTTP port, once started (useful when configured as 0). */
  httpPort(): number;
}

/** Builds the fingerprinter from its configuration. Nothing is opened until `start()`. */
export function createService(
  config: FingerprinterConfig,
  logger: Logger,
  options: FingerprinterOptions = {},
): FingerprinterService {
  const queue = options.queue ?? suiteQueues(config.RABBIT_QUEUE_PREFIX).fingerprinter.name;
  const exchanges = options.exchanges ?? exchangesFrom(config);
  const registry = createMetricsRegistry('fingerprinter');
  const metrics = createFingerprinterMetrics(registry);
  const storage = createStorage(storageConfigFrom(config));
  const stopping = new AbortController();
  const catalog = new FlowCatalog(config.FLOW_DIRECTORY, logger.child({ component: 'flows' }), (snapshot) => {
    metrics.flowReloads.inc();
    metrics.flowsActive.set(snapshot.flows.length);
    metrics.flowFilesInvalid.set(new Set(snapshot.problems.map((problem) => problem.file)).size);
  });
  const watcher = new DirectoryWatcher(
    config.FLOW_DIRECTORY,
    () => void catalog.reload(),
    logger.child({ component: 'flows' }),
    { debounceMs: options.reloadDebounceMs ?? 250, rescanMs: options.rescanMs ?? 30_000 },
  );
  let broker: Broker | undefined;
  let subscription: Subscription | undefined;
  let rerunSubscription: Subscription | undefined;
  let consuming: Promise<void> = Promise.resolve();

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
          if (!subscription) throw new Error(`not consuming ${queue} yet`);
        },
      },
      { name: 's3', check: () => storage.check() },
      {
        name: 'flows',
        check: () => {
          const snapshot = catalog.snapshot();
          if (snapshot.generation === 0) throw new Error('flows not loaded yet');
          if (snapshot.directoryError !== undefined) throw new Error(snapshot.directoryError);
        },
      },
    ],
    details: () => ({ ...reportOf(config.FLOW_DIRECTORY, catalog.snapshot()) }),
  });

  const handler = studyReceivedHandler({
    storage,
    broker: { publish: (...args) => requireBroker().publish(...args) },
    flows: () => catalog.snapshot(),
    metrics,
  });

  const rerunHandler = flowRerunHandler({
    storage,
    broker: { publish: (...args) => requireBroker().publish(...args) },
    flows: () => catalog.snapshot(),
    metrics,
  });

  function requireBroker(): Broker {
    if (!broker) throw new Error('broker not connected');
    return broker;
  }

  /** Connects (retrying until it succeeds or the service closes), then consumes. */
  async function connectAndConsume(): Promise<void> {
    try {
      broker = await connectBroker({
        config: brokerConfigFrom(config),
        logger: logger.child({ component: 'broker' }),
        appId: 'fingerprinter',
        connectionName: `fingerprinter-${process.pid}`,
        signal: stopping.signal,
        ...exchanges,
      });
    } catch (err) {
      if (!stopping.signal.aborted) logger.error({ err }, 'cannot connect to RabbitMQ');
      return;
    }
    const connected = broker;
    await retryUntilDone({ logger, signal: stopping.signal })('starting to consume', async () => {
      // Every queue of the suite, so that no flow.matched is unroutable before the scheduler first starts.
      if (options.queue === undefined) await connected.assertSuiteQueues(config.RABBIT_QUEUE_PREFIX);
      // `??=`: a retry after the rerun queue failed must not consume the receipts twice.
      subscription ??= await connected.consume(
        {
          queue,
          bindings: ['study.received'],
          prefetch: options.prefetch ?? 4,
          ...(options.retryDelaysMs === undefined ? {} : { retryDelaysMs: options.retryDelaysMs }),
          ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
        },
        handler,
      );
      // Operators' reruns (suite only: a test that names its own queue runs the fingerprinter alone).
      if (options.queue === undefined)
        rerunSubscription ??= await connected.consume(
          {
            queue: suiteQueues(config.RABBIT_QUEUE_PREFIX).fingerprinterRerun.name,
            bindings: ['flow.rerun'],
            prefetch: 1,
          },
          rerunHandler,
        );
    }).catch(() => undefined); // only when closing
  }

  let httpPort = 0;
  let started = false;
  let closing: Promise<void> | undefined;
  return {
    async start() {
      started = true;
      // Watch first, so that a change made during the first load is not missed.
      await watcher.start();
      await catalog.reload();
      ({ port: httpPort } = await http.listen());
      consuming = connectAndConsume();
      logger.info({ flowDirectory: config.FLOW_DIRECTORY, queue, httpPort }, 'fingerprinter started');
    },

    close() {
      closing ??= (async () => {
        if (!started) return;
        const step = shutdownStep(logger);
        stopping.abort();
        await step('connect', () => consuming);
        await step('consumer', async () => {
          if (subscription) await subscription.cancel();
          if (rerunSubscription) await rerunSubscription.cancel();
        });
        await step('watcher', () => {
          watcher.close();
        });
        await step('broker', async () => {
          if (broker) await broker.close();
        });
        await step('http', () => http.close());
        logger.info('fingerprinter stopped');
      })();
      return closing;
    },

    httpPort: () => httpPort,
  };
}

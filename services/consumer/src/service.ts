import { hostname } from 'node:os';
import { connectBroker, suiteQueues, type Broker, type Subscription } from '@dicomflow/broker';
import { brokerConfigFrom, type ConfigOf, exchangesFrom, storageConfigFrom } from '@dicomflow/config';
import {
  createHttpServer,
  createMetricsRegistry,
  type HttpServer,
  type Logger,
  retryUntilDone,
  shutdownStep,
} from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { consumeJobs, type SlotDeps } from './consumers/job-slot.js';
import { createDockerClient } from './docker/docker-client.js';
import { removeLeftoverContainers } from './docker/leftovers.js';
import { createConsumerMetrics } from './metrics.js';
import { slotsOf } from './slots.js';
import { StaticVolumes } from './staging/static-volumes.js';
import { WorkFolders } from './staging/work-folders.js';

export type ConsumerConfig = ConfigOf<'consumer'>;

/** The consumer, started and stopped as one. */
export interface ConsumerService {
  /**
   * Serves HTTP, removes containers an earlier life of this consumer left, connects to RabbitMQ (waiting for
   * it), declares the suite's queues, then consumes with one channel per slot.
   */
  start(): Promise<void>;
  /** Stops taking jobs, stops running containers (their jobs run again later), then disconnects. Idempotent. */
  close(): Promise<void>;
  /** The bound HTTP port, once started (useful when configured as 0). */
  httpPort(): number;
  /** Static content copies made by this process (tests). */
  staticFetches(): number;
}

/** Options for tests: shorter retries. */
export interface ConsumerOptions {
  readonly retryDelaysMs?: readonly number[];
  readonly maxAttempts?: number;
}

/** Builds the consumer from its configuration. Nothing is opened until `start()`. */
export function createService(
  config: ConsumerConfig,
  logger: Logger,
  options: ConsumerOptions = {},
): ConsumerService {
  const consumerId = config.CONSUMER_ID || hostname();
  const registry = createMetricsRegistry('consumer');
  const metrics = createConsumerMetrics(registry);
  const docker = createDockerClient(config.DOCKER_HOST);
  const storage = createStorage(storageConfigFrom(config));
  const queues = suiteQueues(config.RABBIT_QUEUE_PREFIX);
  const slots = slotsOf(config);
  const stopping = new AbortController();
  const staticVolumes = new StaticVolumes({
    docker,
    storage,
    bucket: config.S3_BUCKET_STATIC,
    consumerId,
    logger: logger.child({ component: 'static' }),
    onFetch: () => {
      metrics.staticFetches.inc();
    },
  });
  const workFolders = config.CONSUMER_WORK_DIR
    ? new WorkFolders({
        dir: config.CONSUMER_WORK_DIR,
        hostDir: config.CONSUMER_WORK_DIR_HOST,
        consumerId,
        logger: logger.child({ component: 'work-folders' }),
      })
    : undefined;
  let broker: Broker | undefined;
  const subscriptions: Subscription[] = [];
  let consuming = false;
  const running = new Set<string>();
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
      { name: 's3', check: () => storage.check() },
      {
        name: 'docker',
        check: async () => {
          await docker.ping();
        },
      },
    ],
    details: () => ({
      consuming,
      consumerId,
      slots: slots.map((slot) => (slot.kind === 'gpu' ? `gpu:${slot.gpuId}` : `cpu:${slot.index}`)),
      running: [...running],
    }),
  });
  let port = 0;
  let started = false;
  let closing: Promise<void> | undefined;

  const untilDone = retryUntilDone({ logger, signal: stopping.signal });

  const startInOrder = async (): Promise<void> => {
    ({ port } = await http.listen());
    await untilDone('removing containers left behind', () =>
      removeLeftoverContainers(docker, consumerId, logger.child({ component: 'docker' })),
    );
    if (workFolders) await untilDone('removing job folders left behind', () => workFolders.removeLeftovers());
    broker = await connectBroker({
      config: brokerConfigFrom(config),
      logger: logger.child({ component: 'broker' }),
      ...exchangesFrom(config),
      appId: 'consumer',
      connectionName: `consumer-${consumerId}-${process.pid}`,
      signal: stopping.signal,
    });
    const connected = broker;
    await untilDone('declaring the queues', () => connected.assertSuiteQueues(config.RABBIT_QUEUE_PREFIX));
    const deps: SlotDeps = {
      broker: connected,
      storage,
      metrics,
      job: {
        docker,
        storage,
        staticVolumes,
        consumerId,
        worker: `${hostname()}/${consumerId}`,
        maxOutputBytes: config.MAX_OUTPUT_BYTES,
        maxOutputEntries: config.MAX_OUTPUT_ENTRIES,
        limits: {
          memoryBytes: config.CONSUMER_MEMORY_LIMIT,
          maxMemoryBytes: config.CONSUMER_MAX_MEMORY_LIMIT,
          pids: config.CONSUMER_PIDS_LIMIT,
          maxPids: config.CONSUMER_MAX_PIDS_LIMIT,
          defaultUser: config.CONSUMER_DEFAULT_USER,
        },
        workFolders,
        running,
        signal: stopping.signal,
      },
      ...(options.retryDelaysMs === undefined ? {} : { retryDelaysMs: options.retryDelaysMs }),
      ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
    };
    for (const slot of slots) {
      const queue = slot.kind === 'gpu' ? queues.jobsGpu.name : queues.jobsCpu.name;
      subscriptions.push(await consumeJobs(deps, slot, queue));
    }
    if (stopping.signal.aborted) return;
    consuming = true;
    if (slots.length === 0) logger.warn('CPUS is 0 and GPUS is empty: this consumer takes no jobs');
    logger.info(
      {
        httpPort: port,
        consumerId,
        slots: slots.length,
        gpus: config.GPUS,
        staging: workFolders ? 'work-folder' : 'archive',
        ...(workFolders ? { workFolder: workFolders.consumerDir } : {}),
      },
      'consumer started',
    );
  };

  return {
    async start() {
      started = true;
      try {
        await startInOrder();
      } catch (err) {
        if (stopping.signal.aborted) return;
        throw err;
      }
    },

    close() {
      closing ??= (async () => {
        // Running containers are stopped: their jobs go back for a retry instead of outliving the consumer.
        stopping.abort(new Error('the consumer is stopping'));
        if (!started) return;
        const step = shutdownStep(logger);
        consuming = false;
        await step('consumers', async () => {
          for (const subscription of subscriptions.splice(0)) await subscription.cancel();
        });
        await step('broker', async () => {
          await broker?.close();
        });
        await step('http', () => http.close());
        logger.info('consumer stopped');
      })();
      return closing;
    },

    httpPort: () => port,
    staticFetches: () => staticVolumes.fetches,
  };
}

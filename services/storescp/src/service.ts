import { access, constants } from 'node:fs/promises';
import { connectBroker, type Broker } from '@dicomflow/broker';
import { brokerConfigFrom, type ConfigOf, exchangesFrom, storageConfigFrom } from '@dicomflow/config';
import {
  computeBackoff,
  createHttpServer,
  createJanitorCounter,
  createMetricsRegistry,
  type HttpServer,
  type Janitor,
  type Logger,
  type ReadinessCheck,
  quickAckAvailable,
  retryUntilDone,
  shutdownStep,
  sleep,
  startJanitor,
} from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { createDicomReceiver } from './cluster/dicom-receiver.js';
import { Implementation, dimseLog } from './dimse/dimse.js';
import { associationPolicyFrom } from './dimse/receiver-settings.js';
import { createReceiverMetrics } from './metrics.js';
import { assertNoPatientFolders } from './receipts/member-names.js';
import { EarlyReceiptUploads } from './receipts/early-upload.js';
import { ReceiptWorker } from './receipts/receipt-worker.js';
import { countTagsOf } from './spool/group-completion.js';
import { Grouper } from './spool/grouper.js';
import { Spool } from './spool/spool.js';
import { runJanitorOnce } from './spool/spool-janitor.js';
import { StowServer } from './stow/stow-server.js';

export type StorescpConfig = ConfigOf<'storescp'>;

/** The receiver, started and stopped as one. */
export interface StorescpService {
  start(): Promise<void>;
  /** Stops taking associations and STOW-RS requests, lets open ones finish (bounded), publishes what completed, then disconnects. Idempotent. */
  close(): Promise<void>;
  /** Bound ports, once started (useful when configured as 0). */
  ports(): { dicom: number; http: number; stow: number; dicomTls?: number };
}

const DRAIN_MS = 10_000;
const PUBLISH_DRAIN_MS = 10_000;

/** Builds the receiver from its configuration. Nothing is opened until `start()`. */
export function createService(config: StorescpConfig, logger: Logger): StorescpService {
  assertNoPatientFolders(config.TAR_SUBDIR);
  const registry = createMetricsRegistry('storescp');
  const metrics = createReceiverMetrics(registry);
  const janitorCounter = createJanitorCounter(registry);
  let janitor: Janitor | undefined;
  const spool = new Spool(config.SPOOL_DIR, config.SPOOL_FSYNC, {
    maxValueBytes: config.INDEX_MAX_VALUE_BYTES,
  });
  const storage = createStorage(storageConfigFrom(config));
  const bucket = config.S3_BUCKET_INCOMING;
  const stopping = new AbortController();
  let broker: Broker | undefined;
  let resolveBroker: (b: Broker) => void = () => undefined;
  let rejectBroker: (err: unknown) => void = () => undefined;
  // Publishing waits for the first connection; DICOM receiving never does.
  const brokerReady = new Promise<Broker>((resolve, reject) => {
    resolveBroker = resolve;
    rejectBroker = reject;
  });
  brokerReady.catch(() => undefined);
  let bucketReady = false;

  const ensureBucketNow = async (): Promise<void> => {
    if (bucketReady) return;
    await storage.ensureBucket(bucket);
    bucketReady = true;
  };
  // Reading the spool for an upload while associations are open goes through the thread pool, so a slow
  // disk never stalls their sockets; alone, synchronous reads are cheaper.
  const readInline = (): boolean => dicom.openConnections() === 0 && stow.openRequests() === 0;
  const early = config.RECEIPT_EARLY_UPLOAD
    ? new EarlyReceiptUploads({
        storage,
        bucket,
        tarSubdir: config.TAR_SUBDIR,
        logger: logger.child({ component: 'early-upload' }),
        bucketReady: ensureBucketNow,
        readInline,
      })
    : undefined;
  if (early) spool.onFiled((dir, fileName, info) => early.filed(dir, fileName, info));
  const worker = new ReceiptWorker(
    {
      spool,
      bucket,
      tarSubdir: config.TAR_SUBDIR,
      readInline,
      ...(early ? { early } : {}),
      storage: {
        putStream: async (...args) => {
          await ensureBucketNow();
          return storage.putStream(...args);
        },
        putBuffer: (...args) => storage.putBuffer(...args),
        stat: (...args) => storage.stat(...args),
      },
      broker: { publish: async (...args) => (await brokerReady).publish(...args) },
    },
    logger.child({ component: 'receipts' }),
    {
      concurrency: 2,
      retry: { initialMs: 500, maxMs: 30_000 },
      onPublished: () => metrics.receiptsPublished.inc(),
    },
  );
  const grouper = new Grouper(
    spool,
    {
      grouping: config.GROUPING,
      groupTimeoutMs: config.GROUP_TIMEOUT * 1000,
      countTags: countTagsOf(config),
      onComplete: (reason) => metrics.groupsCompleted.inc({ reason }),
    },
    (group) => worker.enqueue(group),
    logger.child({ component: 'grouper' }),
  );
  const policy = associationPolicyFrom(config);
  const idleMs = config.ASSOCIATION_IDLE_TIMEOUT * 1000;
  // With RECEIVER_WORKERS > 1, worker processes; reads the AE_TLS_* files now: a bad one fails here, clearly.
  const dicom = createDicomReceiver(config, { policy, spool, grouper, metrics, registry }, logger);
  const servedRegistry = dicom.metricsRegistry(registry);
  const checks: ReadinessCheck[] = [
    {
      name: 'broker',
      check: async () => (broker ? broker.check() : Promise.reject(new Error('not connected yet'))),
    },
    { name: 's3', check: () => storage.check() },
    { name: 'spool', check: () => access(config.SPOOL_DIR, constants.W_OK) },
  ];
  const stow = new StowServer(
    {
      spool,
      grouper,
      policy,
      metrics,
      logger: logger.child({ component: 'stow' }),
      fsync: config.SPOOL_FSYNC,
      maxRequestBytes: config.STOW_MAX_REQUEST_BYTES,
      maxInstanceBytes: config.STOW_MAX_INSTANCE_BYTES,
      callingAeTitle: config.STOW_CALLING_AE_TITLE,
      calledAeTitle: config.AE_TITLE,
    },
    {
      port: config.STOW_PORT,
      host: config.STOW_HOST,
      token: config.STOW_TOKEN,
      idleTimeoutMs: idleMs,
      registry: servedRegistry,
      checks,
    },
  );
  const http: HttpServer = createHttpServer({
    logger,
    port: config.HTTP_PORT,
    host: config.HTTP_HOST,
    registry: servedRegistry,
    checks,
    details: () => ({
      openAssociations: dicom.openConnections(),
      openStowRequests: stow.openRequests(),
      openGroups: grouper.openGroupCount(),
      receiptsPending: worker.backlog(),
      receiptsFailing: worker.failingCount(),
      ...dicom.details(),
    }),
  });
  let ports: ReturnType<StorescpService['ports']> = { dicom: 0, http: 0, stow: 0 };
  let started = false;
  let closing: Promise<void> | undefined;

  const ensureBucketInBackground = async (): Promise<void> => {
    for (let attempt = 1; !bucketReady && !stopping.signal.aborted; attempt++) {
      try {
        await storage.ensureBucket(bucket);
        bucketReady = true;
      } catch (err) {
        logger.warn({ err, bucket }, 'S3 bucket not ready; retrying');
        await sleep(computeBackoff(attempt, { initialMs: 500, maxMs: 30_000 }), stopping.signal).catch(
          () => undefined,
        );
      }
    }
  };

  /**
   * Declares the suite's queues so that a receipt published before the fingerprinter ever started waits in
   * its queue. Not needed to publish (an unroutable receipt stays in the spool and is retried), so a
   * failure is only logged and retried in the background.
   */
  const declareSuiteQueues = (b: Broker): Promise<void> =>
    retryUntilDone({ logger, signal: stopping.signal })('declaring the queues', () =>
      b.assertSuiteQueues(config.RABBIT_QUEUE_PREFIX),
    ).catch(() => undefined); // only when closing

  return {
    async start() {
      started = true;
      dimseLog.setLevel('silent');
      Implementation.setMaxPduLength(config.MAX_PDU);
      const recovered = await spool.recover();
      if (recovered.length > 0)
        logger.info({ groups: recovered.length }, 'resuming groups left in the spool');
      grouper.restore(recovered);
      janitor = startJanitor({
        intervalMs: config.JANITOR_INTERVAL * 1000,
        logger,
        runOnce: (signal) =>
          runJanitorOnce({
            spool,
            retention: config.RETENTION_SPOOL,
            counter: janitorCounter,
            logger: logger.child({ component: 'janitor' }),
            signal,
          }),
      });
      void ensureBucketInBackground();
      connectBroker({
        config: brokerConfigFrom(config),
        logger: logger.child({ component: 'broker' }),
        ...exchangesFrom(config),
        appId: 'storescp',
        connectionName: `storescp-${process.pid}`,
        signal: stopping.signal,
      }).then((b) => {
        broker = b;
        resolveBroker(b);
        void declareSuiteQueues(b);
      }, rejectBroker);
      const { dicom: dicomPort, dicomTls: dicomTlsPort } = await dicom.listen();
      const { port: httpPort } = await http.listen();
      const stowPort = await stow.listen();
      ports = {
        dicom: dicomPort,
        http: httpPort,
        stow: stowPort,
        ...(dicomTlsPort ? { dicomTls: dicomTlsPort } : {}),
      };
      logger.info(
        {
          aeTitle: config.AE_TITLE,
          dicomPort,
          httpPort,
          stowPort,
          grouping: config.GROUPING,
          // Without the addon (no C compiler at build time) a sender with Nagle on waits ~40 ms per message.
          tcpQuickAck: quickAckAvailable(),
        },
        'storescp started',
      );
    },

    close() {
      closing ??= (async () => {
        if (!started) return;
        const step = shutdownStep(logger);
        await step('janitor', async () => {
          await janitor?.stop();
        });
        await Promise.all([
          step('dicom', () => dicom.close(DRAIN_MS)),
          step('stow', () => stow.close(DRAIN_MS)),
        ]);
        await step('grouper', () => grouper.close());
        await step('receipts', async () => {
          const deadline = Date.now() + PUBLISH_DRAIN_MS;
          while (worker.backlog() > 0 && worker.failingCount() === 0 && Date.now() < deadline)
            await sleep(50);
          stopping.abort();
          await worker.close();
        });
        await step('early uploads', async () => {
          await early?.close();
        });
        await step('broker', async () => {
          if (broker) await broker.close();
        });
        await step('http', () => http.close());
        logger.info('storescp stopped');
      })();
      return closing;
    },

    ports: () => ports,
  };
}

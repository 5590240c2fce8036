import { tmpdir } from 'node:os';
import { storageConfigFrom, type StaticStorageConfig } from '@dicomflow/config';
import {
  createHttpServer,
  createJanitorCounter,
  createMetricsRegistry,
  DirectoryWatcher,
  shutdownStep,
  startJanitor,
  type HttpServer,
  type Janitor,
  type Logger,
} from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { registerDeleteRoute } from './http/delete-route.js';
import { registerDownloadRoute } from './http/download-route.js';
import { registerListRoute } from './http/list-route.js';
import type { RouteContext } from './http/route-context.js';
import { registerUploadRoute } from './http/upload-route.js';
import { createStaticStorageMetrics } from './metrics.js';
import { StaticStore } from './store/static-store.js';
import { runJanitorOnce } from './store/upload-janitor.js';
import { DirectorySync } from './sync/directory-sync.js';

/** Tuning that is not configuration (tests change it). */
export interface StaticStorageOptions {
  /** Quiet time after a change in the static folder before it is synced (default 1 s). */
  readonly syncDebounceMs?: number;
  /** Full rescan interval of the static folder, whatever the change events say (default 60 s). */
  readonly rescanMs?: number;
  /** A folder file modified less than this long ago waits for a later sync (default 2 s: still being copied). */
  readonly settleMs?: number;
  /** Where uploads are received before they go to S3 (default the system's temporary folder). */
  readonly tempDirectory?: string;
}

/** static-storage, started and stopped as one. */
export interface StaticStorageService {
  start(): Promise<void>;
  /** Stops watching and syncing, lets requests in flight finish, then closes the HTTP server. Idempotent. */
  close(): Promise<void>;
  /** The bound HTTP port, once started (useful when configured as 0). */
  httpPort(): number;
  /** Syncs the folder now; resolves when no sync is running or pending (tests). */
  syncNow(): Promise<void>;
}

/** Builds static-storage from its configuration. Nothing is opened until `start()`. */
export function createService(
  config: StaticStorageConfig,
  logger: Logger,
  options: StaticStorageOptions = {},
): StaticStorageService {
  const registry = createMetricsRegistry('static-storage');
  const metrics = createStaticStorageMetrics(registry);
  const storage = createStorage(storageConfigFrom(config));
  const store = new StaticStore(storage, config.S3_BUCKET_STATIC);
  const janitorCounter = createJanitorCounter(registry);
  let janitor: Janitor | undefined;
  const sync = new DirectorySync(
    config.STATIC_DIRECTORY,
    store,
    logger.child({ component: 'sync' }),
    metrics,
    { settleMs: options.settleMs ?? 2000 },
  );
  const watcher = new DirectoryWatcher(
    config.STATIC_DIRECTORY,
    () => void sync.request(),
    logger.child({ component: 'sync' }),
    { debounceMs: options.syncDebounceMs ?? 1000, rescanMs: options.rescanMs ?? 60_000 },
  );
  const http: HttpServer = createHttpServer({
    logger,
    port: config.HTTP_PORT,
    host: config.HTTP_HOST,
    registry,
    checks: [{ name: 's3', check: () => store.check() }],
    details: () => ({ bucket: store.bucket, uploads: config.STATIC_UPLOAD_TOKEN !== '', ...sync.status() }),
  });
  const context: RouteContext = {
    store,
    sync,
    metrics,
    logger,
    uploadToken: config.STATIC_UPLOAD_TOKEN,
    maxUploadBytes: config.STATIC_MAX_UPLOAD_BYTES,
    tempDirectory: options.tempDirectory ?? tmpdir(),
  };
  registerListRoute(http.app, context);
  registerDownloadRoute(http.app, context);
  registerUploadRoute(http.app, context);
  registerDeleteRoute(http.app, context);

  let httpPort = 0;
  let started = false;
  let closing: Promise<void> | undefined;
  return {
    async start() {
      started = true;
      // Watch first, so that a change made during the first sync is not missed.
      await watcher.start();
      ({ port: httpPort } = await http.listen());
      // Not awaited: S3 may still be starting; a failed sync retries with backoff.
      void sync.request();
      janitor = startJanitor({
        intervalMs: config.JANITOR_INTERVAL * 1000,
        logger,
        runOnce: () =>
          runJanitorOnce({
            storage,
            bucket: config.S3_BUCKET_STATIC,
            retention: config.RETENTION_UPLOADS,
            counter: janitorCounter,
            logger: logger.child({ component: 'janitor' }),
          }),
      });
      logger.info(
        {
          staticDirectory: config.STATIC_DIRECTORY,
          bucket: store.bucket,
          uploads: context.uploadToken !== '',
          httpPort,
        },
        'static-storage started',
      );
    },

    close() {
      closing ??= (async () => {
        if (!started) return;
        const step = shutdownStep(logger);
        await step('janitor', async () => {
          await janitor?.stop();
        });
        await step('watcher', () => {
          watcher.close();
        });
        await step('sync', () => sync.close());
        await step('http', () => http.close());
        logger.info('static-storage stopped');
      })();
      return closing;
    },

    httpPort: () => httpPort,
    syncNow: () => sync.request(),
  };
}

import closeWithGrace from 'close-with-grace';
import type { Logger } from 'pino';
import { startProcessBufferReclaimer } from './buffer-reclaimer.js';
import { startTracing } from './tracing.js';

/** What `runService` drives: `start` brings the service up, `close` drains in-flight work and releases. */
export interface ServiceHandle {
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface RunServiceOptions {
  name: string;
  logger: Logger;
  service: ServiceHandle;
  /** How long `close` may take before the process exits 1 anyway. */
  graceMs?: number;
}

/** Below Docker's default 10 s stop timeout, so we exit (and log why) before a SIGKILL. */
export const DEFAULT_GRACE_MS = 8000;

/**
 * Runs a service as the process's main job. Resolves once `start` succeeded. Then:
 * SIGTERM/SIGINT -> `close()` (draining) -> exit 0; a second signal or `close` outlasting `graceMs`
 * -> exit 1; an uncaught exception or unhandled rejection -> logged, `close()`, exit 1.
 * If `start` fails, the error is logged and the process exits 1. Traces are exported (service.name = `name`)
 * when an OTLP endpoint is set ({@link startTracing}); the last spans are flushed after `close()`.
 */
export async function runService(opts: RunServiceOptions): Promise<void> {
  const { name, logger, service } = opts;
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const tracing = await startTracing(name, logger);

  // Installed before start so a signal during start-up still closes what start opened.
  const shutdown = closeWithGrace(
    {
      delay: graceMs,
      logger: {
        error: (err: unknown) => {
          logger.error({ err }, 'close failed');
        },
      },
      onSecondSignal: (signal) => {
        logger.error({ signal }, 'second signal while closing, exiting now');
      },
      onSecondError: (err) => {
        logger.error({ err }, 'error while closing, exiting now');
      },
      onTimeout: (delayMs) => {
        logger.error({ graceMs: delayMs }, 'close took too long, exiting');
      },
    },
    async ({ signal, err, manual }) => {
      if (err) {
        logger.fatal({ err }, 'uncaught error, closing');
      } else {
        const reason = signal ?? (manual ? 'requested' : 'nothing left to do');
        logger.info({ reason }, 'closing');
      }
      try {
        await service.close();
      } finally {
        await tracing.close();
      }
      logger.info({ name }, 'closed');
    },
  );

  try {
    await service.start();
  } catch (err) {
    shutdown.uninstall();
    logger.fatal({ err, name }, 'start failed');
    await tracing.close();
    process.exit(1);
  }
  startProcessBufferReclaimer();
  logger.info({ name }, 'service started');
}

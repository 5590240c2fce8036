import type { Logger } from 'pino';

/** One step of an ordered shutdown: its failure is logged and the next step still runs. */
export type ShutdownStep = (name: string, fn: () => Promise<void> | void) => Promise<void>;

/**
 * Returns the runner for a service's ordered shutdown steps. Each step runs in its own try/catch, so a
 * broken broker connection never keeps the HTTP server or the database pool open.
 */
export function shutdownStep(logger: Logger): ShutdownStep {
  return async (name, fn) => {
    try {
      await fn();
    } catch (err) {
      logger.error({ err, step: name }, 'shutdown step failed');
    }
  };
}

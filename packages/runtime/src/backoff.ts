import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';

export interface BackoffOptions {
  /** Delay before the first retry. */
  initialMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** Full jitter: a uniformly random delay in [0, capped delay], so retrying replicas spread out. */
  jitter?: boolean;
}

/**
 * Delay before retry number `attempt` (1 = first retry): `initialMs * 2^(attempt-1)`, capped at
 * `maxMs`; with `jitter`, a random whole number of milliseconds between 0 and that value.
 */
export function computeBackoff(attempt: number, opts: BackoffOptions): number {
  const step = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  const maxMs = Math.max(0, opts.maxMs);
  const capped = Math.min(maxMs, Math.max(0, opts.initialMs) * 2 ** (step - 1));
  return opts.jitter ? Math.floor(Math.random() * (capped + 1)) : capped;
}

/**
 * Resolves after `ms`; rejects with an `AbortError` as soon as `signal` aborts (at once if it already
 * has), so shutdown never waits out a backoff.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, signal ? { signal } : {});
}

/** Runs one start-up step until it succeeds. */
export type UntilDone = (step: string, attempt: () => Promise<unknown>) => Promise<void>;

/**
 * A runner for start-up steps that wait for a dependency (connect to PostgreSQL, migrate, declare queues):
 * each step is tried until it succeeds, with capped exponential backoff and jitter between tries and a
 * warning per failure; once `signal` aborts (the service is closing) it rejects with the last error.
 */
export function retryUntilDone(opts: {
  readonly logger: Pick<Logger, 'warn'>;
  readonly signal: AbortSignal;
  readonly backoff?: BackoffOptions;
}): UntilDone {
  const backoff = opts.backoff ?? { initialMs: 500, maxMs: 30_000, jitter: true };
  return async (step, attempt) => {
    for (let n = 1; ; n++) {
      try {
        await attempt();
        return;
      } catch (err) {
        if (opts.signal.aborted) throw err;
        opts.logger.warn({ err, step, attempt: n }, 'start-up step failed; retrying');
        await sleep(computeBackoff(n, backoff), opts.signal);
      }
    }
  };
}

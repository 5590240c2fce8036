import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { METRIC_PREFIX } from './metrics.js';

/** What one janitor pass removed, by kind (`receipts`, `tracker_events`, ...). */
export type Deletions = Record<string, number>;

/** The counter every janitor counts its deletions on: `dicomflow_janitor_deleted_total{kind}`. */
export type JanitorCounter = Counter<'kind'>;

/** Registers the janitor's deletion counter on a service's registry. */
export function createJanitorCounter(registry: Registry): JanitorCounter {
  return new Counter({
    name: `${METRIC_PREFIX}janitor_deleted_total`,
    help: 'Objects, rows, files and incomplete uploads the retention janitor removed, by kind',
    labelNames: ['kind'],
    registers: [registry],
  });
}

/** Counts what a pass removed and logs it (counts only: kinds and numbers, never names or ids). */
export function reportDeletions(
  deletions: Deletions,
  counter: JanitorCounter,
  logger: Pick<Logger, 'info' | 'debug'>,
): void {
  const removed = Object.fromEntries(Object.entries(deletions).filter(([, count]) => count > 0));
  for (const [kind, count] of Object.entries(removed)) counter.inc({ kind }, count);
  if (Object.keys(removed).length > 0) logger.info({ removed }, 'janitor removed expired data');
  else logger.debug('janitor found nothing to remove');
}

/** One kind of data a janitor pass removes: its metric label and the step that says how many went. */
export type JanitorStep = readonly [kind: string, run: () => Promise<number>];

/**
 * Runs a pass's `steps` in order, each even when an earlier one failed (a failing bucket must not keep the
 * rows from going), stopping only when `signal` aborts; counts and logs what they removed, then throws the
 * first failure.
 */
export async function runJanitorSteps(
  steps: readonly JanitorStep[],
  deps: {
    readonly counter: JanitorCounter;
    readonly logger: Pick<Logger, 'info' | 'debug'>;
    readonly signal?: AbortSignal | undefined;
  },
): Promise<Deletions> {
  const deletions: Deletions = {};
  const failures: unknown[] = [];
  for (const [kind, step] of steps) {
    if (deps.signal?.aborted === true) break;
    try {
      deletions[kind] = await step();
    } catch (err) {
      failures.push(err);
    }
  }
  reportDeletions(deletions, deps.counter, deps.logger);
  if (failures.length > 0) throw failures[0];
  return deletions;
}

/** The moment `seconds` ago: data last touched before it is past its retention age. */
export function retentionCutoff(seconds: number): Date {
  return new Date(Date.now() - seconds * 1000);
}

export interface JanitorOptions {
  /** Time between the end of one pass and the start of the next. */
  readonly intervalMs: number;
  readonly logger: Pick<Logger, 'warn'>;
  /** One pass. A failure is logged and the next pass tries again; `signal` aborts when the janitor stops. */
  readonly runOnce: (signal: AbortSignal) => Promise<unknown>;
}

/** A janitor running on its timer. */
export interface Janitor {
  /** Stops the timer, aborts the pass under way and waits for it. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Runs `runOnce` now and then every `intervalMs` after the previous pass ended, so passes never overlap.
 * The timer does not keep the process alive.
 */
export function startJanitor(options: JanitorOptions): Janitor {
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<void> | undefined;

  const run = (): void => {
    timer = undefined;
    pass = options
      .runOnce(stopping.signal)
      .then(
        () => undefined,
        (err: unknown) => {
          if (!stopping.signal.aborted)
            options.logger.warn({ err }, 'janitor pass failed; trying again later');
        },
      )
      .finally(() => {
        pass = undefined;
        if (stopping.signal.aborted) return;
        timer = setTimeout(run, options.intervalMs);
        timer.unref();
      });
  };
  run();

  return {
    async stop() {
      stopping.abort();
      clearTimeout(timer);
      await pass;
    },
  };
}

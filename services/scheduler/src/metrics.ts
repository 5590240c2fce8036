import { Counter, Gauge, type Registry } from 'prom-client';
import type { RunCounts } from './db/run-store.js';

/** The scheduler's Prometheus metrics. */
export interface SchedulerMetrics {
  readonly dispatched: Counter<'routing_key'>;
  readonly republished: Counter;
  readonly duplicates: Counter<'routing_key'>;
  readonly ignored: Counter<'routing_key'>;
}

/** Registers the scheduler's metrics on `registry`; `runCounts` is read at each scrape. */
export function createSchedulerMetrics(
  registry: Registry,
  runCounts: () => Promise<RunCounts>,
): SchedulerMetrics {
  const registers = [registry];
  new Gauge({
    name: 'dicomflow_scheduler_runs',
    help: 'Runs known to the scheduler, by status',
    labelNames: ['status'],
    registers,
    async collect() {
      try {
        for (const [status, count] of Object.entries(await runCounts())) this.set({ status }, count);
      } catch {
        // The database is unreachable: /readyz says so; keep the last values.
      }
    },
  });
  return {
    dispatched: new Counter({
      name: 'dicomflow_scheduler_dispatched_total',
      help: 'Messages published (confirmed) by the scheduler, by routing key',
      labelNames: ['routing_key'],
      registers,
    }),
    republished: new Counter({
      name: 'dicomflow_scheduler_republished_total',
      help: 'Dispatches left pending by a crash or failure and published by a sweep',
      registers,
    }),
    duplicates: new Counter({
      name: 'dicomflow_scheduler_duplicates_total',
      help: 'Incoming messages whose dispatch an earlier delivery had already decided, by routing key',
      labelNames: ['routing_key'],
      registers,
    }),
    ignored: new Counter({
      name: 'dicomflow_scheduler_ignored_total',
      help: 'Step outcomes ignored because the step already had a different outcome, by routing key',
      labelNames: ['routing_key'],
      registers,
    }),
  };
}

import { Counter, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '@dicomflow/runtime';

/** The tracker's own metrics (besides the runtime's process metrics). */
export interface TrackerMetrics {
  /** Events handled, by routing key and whether they were new or repeats. */
  readonly events: Counter<'routing_key' | 'result'>;
}

export function createTrackerMetrics(registry: Registry): TrackerMetrics {
  return {
    events: new Counter({
      name: `${METRIC_PREFIX}tracker_events_total`,
      help: 'Events recorded by the flow-tracker, by routing key and result (recorded or duplicate).',
      labelNames: ['routing_key', 'result'],
      registers: [registry],
    }),
  };
}

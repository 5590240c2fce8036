import { Counter, Histogram, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '@dicomflow/runtime';

/** The tracker's own metrics (besides the runtime's process metrics). */
export interface TrackerMetrics {
  /** Events handled, by routing key and whether they were new or repeats. */
  readonly events: Counter<'routing_key' | 'result'>;
  /** Last instance received (the receipt) -> result delivered (send.finished), by flow. */
  readonly resultSeconds: Histogram<'flow'>;
}

/** Seconds from a study's arrival to its results delivered: models take from seconds to an hour. */
const RESULT_BUCKETS = [5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

export function createTrackerMetrics(registry: Registry): TrackerMetrics {
  return {
    events: new Counter({
      name: `${METRIC_PREFIX}tracker_events_total`,
      help: 'Events recorded by the flow-tracker, by routing key and result (recorded or duplicate).',
      labelNames: ['routing_key', 'result'],
      registers: [registry],
    }),
    resultSeconds: new Histogram({
      name: `${METRIC_PREFIX}tracker_result_seconds`,
      help: "Seconds from a run's last instance received to its result delivered to every target, by flow.",
      labelNames: ['flow'],
      buckets: RESULT_BUCKETS,
      registers: [registry],
    }),
  };
}

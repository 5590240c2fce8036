import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The consumer's Prometheus metrics. */
export interface ConsumerMetrics {
  readonly jobs: Counter<'outcome' | 'slot'>;
  readonly republished: Counter;
  readonly running: Gauge<'slot'>;
  /** Job taken -> container started (image, static volumes, input staging, create and start). */
  readonly startSeconds: Histogram;
  /** Container exited -> output stored and the outcome confirmed by RabbitMQ. */
  readonly collectSeconds: Histogram;
  readonly staticFetches: Counter;
  /** Job dispatched (the job's `dispatchedAt`) -> its container started, by flow, queue and priority. */
  readonly queueWaitSeconds: Histogram<'flow' | 'queue' | 'priority'>;
  /** Container started -> exited, by flow and image. */
  readonly containerSeconds: Histogram<'flow' | 'image'>;
}

/** Queue waits and model runs: from sub-second to hours (a GPU queue behind a long model). */
const LONG_BUCKETS = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200];

const OVERHEAD_BUCKETS = [0.1, 0.25, 0.5, 1, 1.5, 2, 5, 10, 30, 60, 300];

/** Registers the consumer's metrics on `registry`. */
export function createConsumerMetrics(registry: Registry): ConsumerMetrics {
  const registers = [registry];
  return {
    jobs: new Counter({
      name: 'dicomflow_consumer_jobs_total',
      help: 'Jobs run to an outcome, by outcome (finished, failed) and slot kind (cpu, gpu)',
      labelNames: ['outcome', 'slot'],
      registers,
    }),
    republished: new Counter({
      name: 'dicomflow_consumer_republished_total',
      help: 'Redelivered jobs whose recorded outcome was published again instead of running them again',
      registers,
    }),
    running: new Gauge({
      name: 'dicomflow_consumer_running_jobs',
      help: 'Jobs running now, by slot kind',
      labelNames: ['slot'],
      registers,
    }),
    startSeconds: new Histogram({
      name: 'dicomflow_consumer_start_seconds',
      help: 'Seconds from taking a job to its container started (image, static volumes, input, create, start)',
      buckets: OVERHEAD_BUCKETS,
      registers,
    }),
    collectSeconds: new Histogram({
      name: 'dicomflow_consumer_collect_seconds',
      help: 'Seconds from the container exiting to its output stored and job.finished confirmed',
      buckets: OVERHEAD_BUCKETS,
      registers,
    }),
    staticFetches: new Counter({
      name: 'dicomflow_consumer_static_fetches_total',
      help: 'Static content tars copied from S3 into a Docker volume (once per content hash and engine)',
      registers,
    }),
    queueWaitSeconds: new Histogram({
      name: 'dicomflow_consumer_queue_wait_seconds',
      help: 'Seconds from a job dispatched to its container started, by flow, queue (jobs.cpu, jobs.gpu) and priority',
      labelNames: ['flow', 'queue', 'priority'],
      buckets: LONG_BUCKETS,
      registers,
    }),
    containerSeconds: new Histogram({
      name: 'dicomflow_consumer_container_seconds',
      help: 'Seconds a model container ran (started to exited), by flow and image',
      labelNames: ['flow', 'image'],
      buckets: LONG_BUCKETS,
      registers,
    }),
  };
}

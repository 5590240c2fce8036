import { JOB_QUEUES, JOB_ROUTING_KEYS, type JobRoutingKey } from '@dicomflow/messages';

/** The queues the scheduler declares, with the configured prefix (RABBIT_QUEUE_PREFIX). */
export interface SchedulerQueues {
  readonly flowMatched: string;
  readonly jobFinished: string;
  readonly jobFailed: string;
  /** The job work queues, consumed by consumers; declared here so that no job is ever unroutable. */
  readonly jobs: Readonly<Record<JobRoutingKey, string>>;
}

export function schedulerQueues(prefix: string): SchedulerQueues {
  return {
    flowMatched: `${prefix}scheduler.flow-matched`,
    jobFinished: `${prefix}scheduler.job-finished`,
    jobFailed: `${prefix}scheduler.job-failed`,
    jobs: Object.fromEntries(JOB_ROUTING_KEYS.map((key) => [key, `${prefix}${JOB_QUEUES[key]}`])) as Record<
      JobRoutingKey,
      string
    >,
  };
}

/** Unacked messages each scheduler queue hands one replica at once. */
export const SCHEDULER_PREFETCH = 4;
/** Transient failures (database or RabbitMQ away) are retried this often before dead-lettering. */
export const SCHEDULER_MAX_ATTEMPTS = 10;
/** Delays between those attempts; the last one repeats (about 15 minutes in all). */
export const SCHEDULER_RETRY_DELAYS_MS: readonly number[] = [1000, 5000, 30_000, 120_000];

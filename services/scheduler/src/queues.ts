import { suiteQueues } from '@dicomflow/broker';
import type { JobRoutingKey } from '@dicomflow/messages';

/** The queues the scheduler consumes and publishes to, with the configured prefix (RABBIT_QUEUE_PREFIX). */
export interface SchedulerQueues {
  readonly flowMatched: string;
  readonly jobFinished: string;
  readonly jobFailed: string;
  /** The job work queues, consumed by consumers. */
  readonly jobs: Readonly<Record<JobRoutingKey, string>>;
}

/** The scheduler's queues, by their names in the suite's queue list ({@link suiteQueues}). */
export function schedulerQueues(prefix: string): SchedulerQueues {
  const suite = suiteQueues(prefix);
  return {
    flowMatched: suite.schedulerFlowMatched.name,
    jobFinished: suite.schedulerJobFinished.name,
    jobFailed: suite.schedulerJobFailed.name,
    jobs: { 'job.cpu': suite.jobsCpu.name, 'job.gpu': suite.jobsGpu.name },
  };
}

/** Unacked messages each scheduler queue hands one replica at once. */
export const SCHEDULER_PREFETCH = 4;
/** Transient failures (database or RabbitMQ away) are retried this often before dead-lettering. */
export const SCHEDULER_MAX_ATTEMPTS = 10;
/** Delays between those attempts; the last one repeats (about 15 minutes in all). */
export const SCHEDULER_RETRY_DELAYS_MS: readonly number[] = [1000, 5000, 30_000, 120_000];

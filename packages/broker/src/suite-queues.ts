import type { Channel } from 'amqplib';
import type { RoutingKey } from '@dicomflow/messages';
import { deadQueueName, retryQueueName } from './topology.js';

/** One work queue of the suite and the routing keys bound to it. */
export interface SuiteQueue {
  readonly name: string;
  readonly bindings: readonly (RoutingKey | '#')[];
}

/**
 * Every work queue of the suite, by role. Each service declares all of them when it connects
 * ({@link Broker.assertSuiteQueues}), so a message published before the service that consumes it has ever
 * started waits in its queue instead of being unroutable. Replicas of a service share its queue.
 */
export interface SuiteQueues {
  readonly fingerprinter: SuiteQueue;
  /** Operators' rerun requests (`flow.rerun`), matched by the fingerprinter against the current flows. */
  readonly fingerprinterRerun: SuiteQueue;
  readonly schedulerFlowMatched: SuiteQueue;
  readonly schedulerJobFinished: SuiteQueue;
  readonly schedulerJobFailed: SuiteQueue;
  readonly jobsCpu: SuiteQueue;
  readonly jobsGpu: SuiteQueue;
  readonly sender: SuiteQueue;
  readonly flowTracker: SuiteQueue;
}

/**
 * The suite's work queues with `prefix` (RABBIT_QUEUE_PREFIX) in front of each name; tests use a prefix of
 * their own (with an exchange of their own) to run an isolated copy beside another.
 */
export function suiteQueues(prefix = ''): SuiteQueues {
  const q = (name: string, bindings: SuiteQueue['bindings']): SuiteQueue => ({
    name: `${prefix}${name}`,
    bindings,
  });
  return {
    fingerprinter: q('fingerprinter.study-received', ['study.received']),
    fingerprinterRerun: q('fingerprinter.flow-rerun', ['flow.rerun']),
    schedulerFlowMatched: q('scheduler.flow-matched', ['flow.matched']),
    schedulerJobFinished: q('scheduler.job-finished', ['job.finished']),
    schedulerJobFailed: q('scheduler.job-failed', ['job.failed']),
    jobsCpu: q('jobs.cpu', ['job.cpu']),
    jobsGpu: q('jobs.gpu', ['job.gpu']),
    sender: q('sender.flow-finished', ['flow.finished']),
    // Every event, for the run table and the manifest.
    flowTracker: q('flow-tracker.events', ['#']),
  };
}

/** Every suite queue of `prefix`, as a list. */
export function suiteQueueList(prefix = ''): SuiteQueue[] {
  return Object.values<SuiteQueue>({ ...suiteQueues(prefix) });
}

/**
 * Deletes every suite queue of `prefix` with its dead-letter queue and the retry queues of
 * `retryDelaysMs`: the clean-up of a test that ran services under a prefix of its own. Never call it with
 * the production prefix.
 */
export async function deleteSuiteQueues(
  channel: Pick<Channel, 'deleteQueue'>,
  prefix: string,
  retryDelaysMs: readonly number[] = [],
): Promise<void> {
  if (prefix === '') throw new Error('refusing to delete the unprefixed (production) suite queues');
  for (const queue of suiteQueueList(prefix)) {
    await channel.deleteQueue(queue.name);
    await channel.deleteQueue(deadQueueName(queue.name));
    for (const delay of retryDelaysMs) await channel.deleteQueue(retryQueueName(queue.name, delay));
  }
}

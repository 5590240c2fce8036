import type { Broker, DeliveryContext, Subscription } from '@dicomflow/broker';
import {
  JOB_QUEUES,
  jobFailedMessageId,
  jobFinishedMessageId,
  jobStartedMessageId,
  type Job,
} from '@dicomflow/messages';
import { errorKind } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';
import type { Slot } from '../docker/create-options.js';
import { execJob, type JobDeps, type JobOutcome, type JobTimings } from '../jobs/exec-job.js';
import { readOutcome, writeOutcome, type OutcomeRecord } from '../jobs/outcome-record.js';
import { jobSpan, recordJobPhases } from './job-spans.js';
import type { ConsumerMetrics } from '../metrics.js';

/** Transient failures (S3, Docker, RabbitMQ away) are retried this often; the last attempt fails the job. */
export const JOB_MAX_ATTEMPTS = 8;
/** Delays between those attempts; the last one repeats. */
export const JOB_RETRY_DELAYS_MS: readonly number[] = [2000, 10_000, 30_000, 120_000];

/** What a slot needs besides what running a job needs. */
export interface SlotDeps {
  readonly broker: Broker;
  readonly storage: Pick<Storage, 'stat' | 'getBuffer' | 'putBuffer'>;
  readonly metrics: ConsumerMetrics;
  readonly job: Omit<JobDeps, 'publishStarted' | 'logger'>;
  readonly maxAttempts?: number;
  readonly retryDelaysMs?: readonly number[];
}

/** The routing key a slot consumes. */
export function slotRoutingKey(slot: Slot): 'job.cpu' | 'job.gpu' {
  return slot.kind === 'gpu' ? 'job.gpu' : 'job.cpu';
}

/**
 * Consumes `queue` for one slot, one job at a time (prefetch 1 on its own channel: the next job taken is the
 * highest priority one waiting). Each job's outcome is recorded in S3, then published with its deterministic
 * message id and confirmed, then the job is acked. A redelivered job whose outcome is recorded is not run
 * again: its outcome is published again under the same id.
 */
export async function consumeJobs(deps: SlotDeps, slot: Slot, queue: string): Promise<Subscription> {
  const routingKey = slotRoutingKey(slot);
  const maxAttempts = deps.maxAttempts ?? JOB_MAX_ATTEMPTS;
  return deps.broker.consume(
    {
      queue,
      bindings: [routingKey],
      prefetch: 1,
      maxAttempts,
      retryDelaysMs: deps.retryDelaysMs ?? JOB_RETRY_DELAYS_MS,
      // The job fails after its last attempt, S3 or the engine down or not: no run waits forever.
      outagesCountAsAttempts: true,
    },
    async (job, ctx) => {
      await jobSpan(job, slot, () => execJobMessage(deps, slot, job, ctx, maxAttempts));
    },
  );
}

/** Handles one job delivery (exported for tests that call it directly). */
export async function execJobMessage(
  deps: SlotDeps,
  slot: Slot,
  job: Job,
  ctx: Pick<DeliveryContext, 'logger' | 'attempt'>,
  maxAttempts = JOB_MAX_ATTEMPTS,
): Promise<void> {
  const logger = ctx.logger.child({
    runId: job.runId,
    step: job.step,
    slot: slot.kind === 'gpu' ? `gpu:${slot.gpuId}` : `cpu:${slot.index}`,
  });
  const takenAt = Date.now();
  const lastAttempt = ctx.attempt >= maxAttempts;
  // On the last attempt an unreadable record (S3 away) counts as none: the job then fails for good below.
  const recorded = await readOutcome(deps.storage, job).catch((err: unknown) => {
    if (errorKind(err) === 'transient' && lastAttempt) return undefined;
    throw err;
  });
  if (recorded) {
    await publishOutcome(deps, job, recorded);
    deps.metrics.republished.inc();
    logger.info(
      { outcome: recorded.routingKey },
      'job delivered again after its outcome was recorded; published it again',
    );
    return;
  }
  const running = deps.metrics.running.labels(slot.kind);
  running.inc();
  // The container and job folder are removed once the outcome is out (or the attempt failed), not before.
  const leftovers: Array<() => Promise<void>> = [];
  const removeLeftovers = async (): Promise<void> => {
    for (const cleanup of leftovers.splice(0)) await cleanup();
  };
  let outcome: JobOutcome;
  try {
    outcome = await execJob(
      {
        ...deps.job,
        logger,
        deferCleanup: (cleanup) => leftovers.push(cleanup),
        publishStarted: (body) =>
          deps.broker.publish('job.started', body, {
            messageId: jobStartedMessageId(job.runId, job.step),
            correlationId: job.runId,
            priority: 5,
          }),
      },
      job,
      slot,
      takenAt,
    );
  } catch (err) {
    await removeLeftovers();
    if (errorKind(err) !== 'transient' || !lastAttempt) throw err;
    // The last attempt: the run must not wait forever for a job that never ends.
    const message = `the job failed ${maxAttempts} times on transient errors; last: ${err instanceof Error ? err.message : String(err)}`;
    outcome = {
      kind: 'failed',
      timings: { takenAt, steps: {} },
      body: {
        runId: job.runId,
        step: job.step,
        reason: 'error',
        message: message.slice(0, 4000),
        worker: deps.job.worker,
      },
    };
  } finally {
    running.dec();
  }
  recordJobPhases(outcome.timings);
  const record: OutcomeRecord =
    outcome.kind === 'finished'
      ? { routingKey: 'job.finished', body: outcome.body }
      : { routingKey: 'job.failed', body: outcome.body };
  // Recorded and published at once. The record only spares a redelivery from running the job again, so
  // failing to write it (S3 away) does not hold the outcome back: without it a redelivered job runs again,
  // and its outcome goes out under the same message id or is ignored as a repeat by the scheduler.
  const recording = writeOutcome(deps.storage, job, record).catch((err: unknown) => {
    logger.warn({ err }, 'cannot record the job outcome; a redelivery would run the job again');
  });
  const confirmedAt = await Promise.all([recording, publishOutcome(deps, job, record)])
    .then(() => Date.now())
    .finally(removeLeftovers);
  outcome.timings.steps.outcome = confirmedAt;
  deps.metrics.jobs.inc({ outcome: outcome.kind, slot: slot.kind });
  const { containerStartedAt, containerExitedAt } = outcome.timings;
  const timings = {
    start_s:
      containerStartedAt === undefined ? undefined : (containerStartedAt - outcome.timings.takenAt) / 1000,
    run_s:
      containerStartedAt === undefined || containerExitedAt === undefined
        ? undefined
        : (containerExitedAt - containerStartedAt) / 1000,
    collect_s: containerExitedAt === undefined ? undefined : (confirmedAt - containerExitedAt) / 1000,
    steps_s: stepDurations(outcome.timings),
  };
  if (timings.start_s !== undefined) deps.metrics.startSeconds.observe(timings.start_s);
  observeJobTimes(deps.metrics, job, JOB_QUEUES[slotRoutingKey(slot)], outcome.timings);
  if (outcome.kind === 'finished' && timings.collect_s !== undefined)
    deps.metrics.collectSeconds.observe(timings.collect_s);
  if (outcome.kind === 'finished') logger.info({ timings }, 'job finished');
  else {
    // A model's own log lines (quoted in exit-code and timeout messages) may hold patient data: not logged here.
    const { reason, exitCode } = outcome.body;
    const quotesLog = reason === 'exit-code' || reason === 'timeout';
    logger.warn(
      { reason, exitCode, timings, ...(quotesLog ? {} : { message: outcome.body.message }) },
      'job failed',
    );
  }
}

/**
 * What operators ask: how long a job waited for a slot (from the scheduler's dispatch, so the queue and the
 * start overhead both count) and how long its model ran, labelled by flow (its name, else its file).
 */
function observeJobTimes(
  metrics: ConsumerMetrics,
  job: Job,
  queue: string,
  timings: JobOutcome['timings'],
): void {
  const flow = job.flowName || job.flowFile;
  const dispatchedAt = Date.parse(job.dispatchedAt);
  const { containerStartedAt, containerExitedAt } = timings;
  if (containerStartedAt === undefined) return;
  if (!Number.isNaN(dispatchedAt))
    metrics.queueWaitSeconds.observe(
      { flow, queue, priority: String(job.priority) },
      Math.max(containerStartedAt - dispatchedAt, 0) / 1000,
    );
  if (containerExitedAt !== undefined)
    metrics.containerSeconds.observe(
      { flow, image: job.model.docker_kwargs.image },
      (containerExitedAt - containerStartedAt) / 1000,
    );
}

async function publishOutcome(deps: SlotDeps, job: Job, record: OutcomeRecord): Promise<void> {
  const options = { correlationId: job.runId, priority: 5 };
  if (record.routingKey === 'job.finished') {
    await deps.broker.publish('job.finished', record.body, {
      ...options,
      messageId: jobFinishedMessageId(job.runId, job.step),
    });
  } else {
    await deps.broker.publish('job.failed', record.body, {
      ...options,
      messageId: jobFailedMessageId(job.runId, job.step),
    });
  }
}

/** Seconds each step took, in order (from the end of the step before, or from taking the job). */
function stepDurations(timings: JobTimings): Record<string, number> {
  const durations: Record<string, number> = {};
  let from = timings.takenAt;
  for (const [name, at] of Object.entries(timings.steps).sort((a, b) => a[1] - b[1])) {
    durations[name] = (at - from) / 1000;
    from = at;
  }
  return durations;
}

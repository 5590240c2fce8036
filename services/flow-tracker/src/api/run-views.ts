import { RUN_STATUS, type RunRow, type SendRetryRow, type StepRow } from '../db/entities.js';
import { statusName } from './schemas.js';

/** A run as the API shows it. */
export function runView(run: RunRow): Record<string, unknown> {
  return {
    id: run.id,
    ts: iso(run.ts),
    uid: run.uid,
    name: run.name,
    version: run.version,
    patient: run.patient,
    priority: run.priority,
    sender: run.sender,
    destinations: run.destinations === '' ? [] : run.destinations.split(', '),
    received: iso(run.received),
    dispatched: iso(run.dispatched),
    finished: iso(run.finished),
    sent: iso(run.sent),
    status: run.status,
    statusName: statusName(run.status),
    failure: run.failureReason === null ? null : { reason: run.failureReason, message: run.failureMessage },
    receiptId: run.receiptId,
    flowFile: run.flowFile,
    flowHash: run.flowHash,
    stepCount: run.stepCount,
  };
}

/**
 * A run with its steps, the time each stage took (null while a stage's ends are unknown) and the latest
 * retry of each delivery target that needed one.
 */
export function runDetailView(
  run: RunRow,
  steps: readonly StepRow[],
  retries: readonly SendRetryRow[] = [],
): Record<string, unknown> {
  const lastStepEnd = steps.reduce<Date | null>(
    (last, s) => (s.ended && (!last || s.ended > last) ? s.ended : last),
    null,
  );
  return {
    ...runView(run),
    waitingFor: waitingFor(run, steps, retries),
    timings: {
      receivedToDispatchedMs: span(run.received, run.dispatched),
      runningMs: span(run.dispatched, run.finished),
      sendingMs: span(run.finished, run.sent),
      totalMs: span(run.received, run.sent ?? run.finished ?? lastStepEnd),
    },
    steps: steps.map((s) => ({
      step: s.step,
      state: s.state,
      image: s.image,
      queue: s.queue,
      worker: s.worker,
      gpu: s.gpu,
      imageId: s.imageId,
      repoDigests: s.repoDigests,
      dispatched: iso(s.dispatched),
      start: iso(s.started),
      end: iso(s.ended),
      waitingMs: span(s.dispatched, s.started),
      runningMs: span(s.started, s.ended),
      exitCode: s.exitCode,
      log: s.log,
      failure: s.failureReason === null ? null : { reason: s.failureReason, message: s.failureMessage },
    })),
    sendRetries: retries.map((r) => ({
      destination: r.target,
      kind: r.kind,
      attempt: r.attempt,
      maxAttempts: r.maxAttempts,
      error: { code: r.errorCode, message: r.errorMessage },
      retryingAt: iso(r.retryingAt),
      nextAttemptAt: iso(r.nextAttemptAt),
    })),
  };
}

/**
 * Why a run that is not failed or done makes no progress, in words, when the tracker can tell: a job
 * dispatched and not started waits in its queue for a free slot of its kind (a GPU job for a consumer
 * with GPUS, which none may have); a sending run whose delivery is retried waits for the destination
 * (each target that needed a retry: its last error and when the sender tries again).
 */
export function waitingFor(
  run: RunRow,
  steps: readonly StepRow[],
  retries: readonly SendRetryRow[] = [],
): string | null {
  if (run.status === RUN_STATUS.sending)
    return retries.length === 0 ? null : retries.map(retryText).join('; ');
  if (run.status !== RUN_STATUS.pending && run.status !== RUN_STATUS.running) return null;
  const queued = steps.find((s) => s.state === 'dispatched');
  if (!queued) return null;
  return queued.queue === 'job.gpu'
    ? `step ${queued.step} is queued on job.gpu: waiting for a consumer with a free GPU slot (a consumer takes GPU jobs only with GPUS set)`
    : `step ${queued.step} is queued on job.cpu: waiting for a free CPU slot of a consumer`;
}

/** One target's retry in words: the destination, the attempt that failed and why, the next attempt. */
function retryText(r: SendRetryRow): string {
  return `delivery to ${r.target} is retried: attempt ${r.attempt} of ${r.maxAttempts} failed (${r.errorCode}: ${r.errorMessage}); next attempt at ${r.nextAttemptAt.toISOString()}`;
}

/** A time as ISO 8601, or null. */
export function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}

/** Milliseconds from one time to another, or null while either is unknown. */
export function span(from: Date | null, to: Date | null): number | null {
  return from && to ? to.getTime() - from.getTime() : null;
}

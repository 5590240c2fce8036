import { destinationText, sendTargetText, type SendRetrying } from '@dicomflow/messages';
import { RUN_STATUS, type RunRow, type RunStatus, type SendRetryRow, type StepRow } from '../db/entities.js';
import {
  Deliveries,
  deliveryStatus,
  preferredFailure,
  SEND_FAILURE_RANK,
  type Failure,
} from './deliveries.js';
import type { TrackedEvent } from './tracked-event.js';

/** Longest container log kept per step (its end: that is where errors are). */
export const LOG_CAP_CHARS = 16_384;

/** The receipt facts a run row shows. */
export interface ReceiptFacts {
  readonly receivedAt: Date;
  readonly callingAeTitle: string;
  readonly callingHost: string;
  readonly patient: string;
  readonly studyUids: string;
}

export type FoldedRun = Omit<RunRow, 'updatedAt'>;
export type FoldedStep = StepRow;
export type FoldedSendRetry = SendRetryRow;

/**
 * Rebuilds a run's row and steps from the set of its events. The result depends only on which events
 * arrived, never on their order or on repeats: every field is a merge that is commutative and idempotent
 * (first/last by time, maximum of state, set union), which is what makes the tracker order-tolerant.
 * `firstRecorded` (when the first of them arrived) is the run's `ts` only if no event names a time.
 */
export function foldRun(
  runId: string,
  events: readonly TrackedEvent[],
  receipt: ReceiptFacts | undefined,
  firstRecorded: Date = new Date(0),
): { run: FoldedRun; steps: FoldedStep[]; retries: FoldedSendRetry[] } {
  const f = new RunFacts();
  // A canonical order first, so that even "first one wins" merges cannot depend on arrival order.
  for (const event of canonicalOrder(events)) f.add(event);
  const steps = [...f.steps.values()].sort((a, b) => a.step - b.step);
  // A job's failure stays; a delivery's counts only while that delivery is the latest (see Deliveries).
  const failure = f.failure ?? f.deliveries.latest()?.failure;
  const run: FoldedRun = {
    id: runId,
    // Events without any time of their own (possible only for job outcomes) fall back to when one arrived.
    ts: f.matchedAt ?? f.earliest ?? firstRecorded,
    uid: receipt?.studyUids ?? '',
    name: f.name,
    version: f.version,
    patient: receipt?.patient ?? '',
    priority: f.priority,
    sender: f.sender || (receipt ? `${receipt.callingAeTitle}@${receipt.callingHost}` : ''),
    destinations: [...f.destinations].sort().join(', '),
    received: receipt?.receivedAt ?? null,
    dispatched: f.dispatched,
    finished: f.finished,
    sent: f.sent,
    status: f.status(steps),
    failureReason: failure?.reason ?? null,
    failureMessage: failure?.message ?? null,
    receiptId: f.receiptId,
    flowFile: f.flowFile,
    flowHash: f.flowHash,
    stepCount: f.stepCount,
  };
  const retries = [...f.retries.values()]
    .map((retry) => ({ ...retry, runId }))
    .sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  return { run, steps, retries };
}

/** Ranks of failures: which one a run shows when several arrived (flow.failed says it best). */
const FAILURE_RANK = { 'flow.failed': 0, 'job.failed': 1, 'send.failed': SEND_FAILURE_RANK } as const;

const STEP_STATE_RANK: Record<StepRow['state'], number> = {
  dispatched: 0,
  running: 1,
  finished: 2,
  failed: 3,
};

class RunFacts {
  matchedAt: Date | null = null;
  earliest: Date | null = null;
  name = '';
  version = '';
  flowFile = '';
  flowHash = '';
  priority: number | null = null;
  stepCount: number | null = null;
  receiptId: string | null = null;
  sender = '';
  readonly destinations = new Set<string>();
  dispatched: Date | null = null;
  finished: Date | null = null;
  sent: Date | null = null;
  /** The run's job or flow failure (a delivery's failure is its delivery's). */
  failure: Failure | undefined;
  readonly deliveries = new Deliveries();
  readonly seen = new Set<TrackedEvent['routingKey']>();
  readonly steps = new Map<number, FoldedStep>();
  /** The latest retry per target (`AE@host:port`). */
  readonly retries = new Map<string, FoldedSendRetry>();

  add(event: TrackedEvent): void {
    this.seen.add(event.routingKey);
    this.deliveries.record(event);
    switch (event.routingKey) {
      case 'study.received':
        return;
      case 'flow.matched': {
        const b = event.body;
        this.#time(b.matchedAt);
        this.matchedAt = earlier(this.matchedAt, date(b.matchedAt));
        this.#flow(b.flow.name, b.flow.version, b.flowFile, b.receiptId);
        this.flowHash ||= b.flowHash;
        this.priority = b.priority;
        this.stepCount = b.flow.models.length;
        this.sender = `${b.callingAeTitle}@${b.callingHost}`;
        for (const d of b.flow.destinations) this.destinations.add(destinationText(d));
        return;
      }
      case 'job.cpu':
      case 'job.gpu': {
        const b = event.body;
        this.#time(b.dispatchedAt);
        this.#flow(b.flowName, b.flowVersion, b.flowFile, b.receiptId);
        this.stepCount ??= b.stepCount;
        this.flowHash ||= b.flowHash;
        this.dispatched = earlier(this.dispatched, date(b.dispatchedAt));
        const step = this.#step(b.step, 'dispatched');
        step.queue = event.routingKey;
        step.image ||= b.model.docker_kwargs.image;
        step.dispatched = earlier(step.dispatched, date(b.dispatchedAt));
        return;
      }
      case 'job.started': {
        const b = event.body;
        this.#time(b.startedAt);
        const step = this.#step(b.step, 'running');
        step.image ||= b.image;
        step.worker ||= b.worker ?? '';
        step.gpu ||= b.gpu ?? '';
        step.imageId ||= b.imageId ?? '';
        if (step.repoDigests.length === 0 && b.repoDigests) step.repoDigests = [...b.repoDigests].sort();
        step.started = earlier(step.started, date(b.startedAt));
        return;
      }
      case 'job.finished':
      case 'job.failed': {
        const b = event.body;
        this.#time(b.startedAt);
        this.#time(b.finishedAt);
        const step = this.#step(b.step, event.routingKey === 'job.finished' ? 'finished' : 'failed');
        step.worker ||= b.worker ?? '';
        step.started = earlier(step.started, date(b.startedAt));
        step.ended = later(step.ended, date(b.finishedAt));
        if (b.exitCode !== undefined) step.exitCode ??= b.exitCode;
        if (b.logExcerpt !== undefined) step.log ??= capLog(b.logExcerpt);
        if (event.routingKey === 'job.failed') {
          step.failureReason = event.body.reason;
          step.failureMessage = event.body.message;
          this.#fail({ ...event.body, rank: FAILURE_RANK['job.failed'] });
        }
        return;
      }
      case 'flow.finished': {
        const b = event.body;
        this.#time(b.finishedAt);
        this.#flow(b.flowName, b.flowVersion, b.flowFile, b.receiptId);
        this.stepCount ??= b.stepCount;
        this.finished = later(this.finished, date(b.finishedAt));
        for (const d of b.destinations) this.destinations.add(destinationText(d));
        return;
      }
      case 'flow.failed': {
        const b = event.body;
        this.#time(b.failedAt);
        this.#flow(b.flowName, b.flowVersion, b.flowFile, b.receiptId);
        this.finished = later(this.finished, date(b.failedAt));
        this.#fail({ ...b, rank: FAILURE_RANK['flow.failed'], step: b.step ?? -1 });
        return;
      }
      case 'flow.rerun': {
        // The run an operator's rerun starts: known from the request until the fingerprinter matched it.
        const b = event.body;
        this.#time(b.requestedAt);
        this.#flow(b.flowName, b.flowVersion, b.flowFile, b.receiptId);
        this.sender ||= `${b.callingAeTitle}@${b.callingHost}`;
        return;
      }
      case 'send.started': {
        const b = event.body;
        this.#time(b.startedAt);
        this.#flow(b.flowName, b.flowVersion, b.flowFile, b.receiptId);
        for (const t of b.targets) this.destinations.add(sendTargetText(t));
        return;
      }
      case 'send.retrying': {
        const b = event.body;
        this.#time(b.retryingAt);
        this.#flow(b.flowName, b.flowVersion, b.flowFile, b.receiptId);
        this.destinations.add(sendTargetText(b.target));
        this.#retry(b);
        return;
      }
      case 'send.finished': {
        const b = event.body;
        this.#time(b.finishedAt);
        this.#flow(b.flowName, b.flowVersion, b.flowFile, b.receiptId);
        this.sent = later(this.sent, date(b.finishedAt));
        for (const o of b.outcomes) this.destinations.add(sendTargetText(o.target));
        return;
      }
      case 'send.failed': {
        const b = event.body;
        this.#time(b.failedAt);
        this.#flow(b.flowName, b.flowVersion, b.flowFile, b.receiptId);
        // Its failure is its delivery's (Deliveries).
        for (const o of b.outcomes) this.destinations.add(sendTargetText(o.target));
        return;
      }
    }
  }

  status(steps: readonly FoldedStep[]): RunStatus {
    const s = this.seen;
    if (this.failure || s.has('job.failed') || s.has('flow.failed')) return RUN_STATUS.failed;
    // The latest delivery: 2 asked for, 3 sending (a retry can come before send.started, which waits for
    // the whole download), 4 sent, 400 failed.
    const delivery = this.deliveries.latest();
    if (delivery) return deliveryStatus(delivery);
    if (steps.some((step) => step.state !== 'dispatched')) return RUN_STATUS.running;
    return RUN_STATUS.pending;
  }

  /** Name, version and file are the flow's at match time; every event carries the same, so any will do. */
  #flow(name: string, version: string, flowFile: string, receiptId: string): void {
    this.name ||= name;
    this.version ||= version;
    this.flowFile ||= flowFile;
    this.receiptId ??= receiptId;
  }

  #time(value: string | undefined): void {
    this.earliest = earlier(this.earliest, date(value));
  }

  #step(index: number, state: StepRow['state']): FoldedStep {
    let step = this.steps.get(index);
    if (!step) {
      step = {
        runId: '',
        step: index,
        state,
        image: '',
        queue: '',
        worker: '',
        gpu: '',
        imageId: '',
        repoDigests: [],
        dispatched: null,
        started: null,
        ended: null,
        exitCode: null,
        log: null,
        failureReason: null,
        failureMessage: null,
      };
      this.steps.set(index, step);
    }
    if (STEP_STATE_RANK[state] > STEP_STATE_RANK[step.state]) step.state = state;
    return step;
  }

  /** Keeps the latest retry of the target: by time, then attempt (a tie keeps the canonically first). */
  #retry(b: SendRetrying): void {
    const target = sendTargetText(b.target);
    const retryingAt = date(b.retryingAt);
    const nextAttemptAt = date(b.nextAttemptAt);
    if (!retryingAt || !nextAttemptAt) return;
    const current = this.retries.get(target);
    if (
      current &&
      (retryingAt < current.retryingAt ||
        (retryingAt.getTime() === current.retryingAt.getTime() && b.attempt <= current.attempt))
    )
      return;
    this.retries.set(target, {
      runId: '',
      target,
      kind: b.target.kind,
      attempt: b.attempt,
      maxAttempts: b.maxAttempts,
      errorCode: b.error.code,
      errorMessage: b.error.message,
      retryingAt,
      nextAttemptAt,
    });
  }

  #fail(candidate: Failure): void {
    this.failure = preferredFailure(candidate, this.failure);
  }
}

function canonicalOrder(events: readonly TrackedEvent[]): TrackedEvent[] {
  return events
    .map((event) => ({ event, key: `${event.routingKey}\u0000${JSON.stringify(event.body)}` }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ event }) => event);
}

function date(value: string | undefined): Date | null {
  if (value === undefined) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

function earlier(a: Date | null, b: Date | null): Date | null {
  if (!a) return b;
  if (!b) return a;
  return b < a ? b : a;
}

function later(a: Date | null, b: Date | null): Date | null {
  if (!a) return b;
  if (!b) return a;
  return b > a ? b : a;
}

/** The end of `log`, at most {@link LOG_CAP_CHARS} characters. */
export function capLog(log: string): string {
  return log.length <= LOG_CAP_CHARS ? log : `…${log.slice(log.length - LOG_CAP_CHARS + 1)}`;
}

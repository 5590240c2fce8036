import type { Resend, SendFailed } from '@dicomflow/messages';
import { RUN_STATUS, type RunStatus } from '../db/entities.js';
import type { TrackedEvent } from './tracked-event.js';

/** Rank of a delivery's failure: below every job or flow failure (see `FAILURE_RANK` in fold-run.ts). */
export const SEND_FAILURE_RANK = 2;

/** Why a run failed, ranked: the lowest rank says it best (see `FAILURE_RANK` in fold-run.ts). */
export interface Failure {
  readonly rank: number;
  readonly step: number;
  readonly reason: string;
  readonly message: string;
}

/**
 * Of two failures, the one a run shows: lower rank, then earlier step, then the smaller text. A total
 * order, so the choice never depends on the order the events came in.
 */
export function preferredFailure(candidate: Failure, current: Failure | undefined): Failure {
  if (
    !current ||
    candidate.rank < current.rank ||
    (candidate.rank === current.rank &&
      (candidate.step < current.step ||
        (candidate.step === current.step &&
          candidate.reason + candidate.message < current.reason + current.message)))
  )
    return {
      rank: candidate.rank,
      step: candidate.step,
      reason: candidate.reason,
      message: candidate.message,
    };
  return current;
}

/** One delivery of a run's output: the run's own (`id` ''), or an operator's resend. */
export interface Delivery {
  /** The resend id; '' for the run's own delivery. */
  readonly id: string;
  /** When the operator asked for it; null for the run's own delivery (always the first). */
  requestedAt: Date | null;
  /** `send.started` or `send.retrying` came: the sender is at it. */
  started: boolean;
  /** The latest `send.finished` of this delivery. */
  finishedAt: Date | null;
  /** Its `send.failed`, when one came (a failure outranks a finish of the same delivery). */
  failure: Failure | undefined;
}

/**
 * The deliveries of a run, from its `flow.finished` and `send.*` events (each names its resend, or none).
 * Only the latest one decides the run's status and send failure: an operator resends to recover, and a
 * resend that got through makes a failed delivery a sent run (a resend that fails makes a sent run failed,
 * with that resend's reason). Merges are order-free, like the rest of the fold.
 */
export class Deliveries {
  readonly #all = new Map<string, Delivery>();

  /** Takes in a `flow.finished` or `send.*` event (any other event changes nothing). */
  record(event: TrackedEvent): void {
    if (event.routingKey === 'flow.finished') this.of(event.body.resend);
    else if (event.routingKey === 'send.started' || event.routingKey === 'send.retrying')
      this.of(event.body.resend).started = true;
    else if (event.routingKey === 'send.finished') {
      const delivery = this.of(event.body.resend);
      const at = new Date(event.body.finishedAt);
      if (!Number.isNaN(at.getTime()) && (!delivery.finishedAt || at > delivery.finishedAt))
        delivery.finishedAt = at;
    } else if (event.routingKey === 'send.failed') {
      const delivery = this.of(event.body.resend);
      delivery.failure = preferredFailure(sendFailure(event.body), delivery.failure);
    }
  }

  /** The delivery of an event with `resend` (the run's own when absent), created on first sight. */
  of(resend: Resend | undefined): Delivery {
    const id = resend?.id ?? '';
    let delivery = this.#all.get(id);
    if (!delivery) {
      delivery = { id, requestedAt: null, started: false, finishedAt: null, failure: undefined };
      this.#all.set(id, delivery);
    }
    if (resend) delivery.requestedAt = earliest(delivery.requestedAt, new Date(resend.requestedAt));
    return delivery;
  }

  /** Every delivery seen, the run's own included. */
  all(): Delivery[] {
    return [...this.#all.values()];
  }

  /** The last delivery asked for (resends by request time, then id; the run's own is the first). */
  latest(): Delivery | undefined {
    let last: Delivery | undefined;
    for (const delivery of this.#all.values()) if (!last || isLater(delivery, last)) last = delivery;
    return last;
  }
}

/** The status a run has while `delivery` is its latest: 2 asked for, 3 sending, 4 sent, 400 failed. */
export function deliveryStatus(delivery: Delivery): RunStatus {
  if (delivery.failure) return RUN_STATUS.failed;
  if (delivery.finishedAt) return RUN_STATUS.sent;
  if (delivery.started) return RUN_STATUS.sending;
  return RUN_STATUS.finished;
}

/** The failure a `send.failed` gives its delivery: `send-<reason>` (the first, sorted) and the summary. */
export function sendFailure(failed: SendFailed): Failure {
  const reasons = failed.outcomes
    .filter((o) => o.failed > 0 || o.reason !== undefined)
    .map((o) => o.reason ?? 'error')
    .sort();
  return {
    rank: SEND_FAILURE_RANK,
    step: -1,
    reason: `send-${reasons[0] ?? 'error'}`,
    message: failed.message,
  };
}

function isLater(a: Delivery, b: Delivery): boolean {
  const at = a.requestedAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  const bt = b.requestedAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  return at !== bt ? at > bt : a.id > b.id;
}

function earliest(a: Date | null, b: Date): Date | null {
  if (Number.isNaN(b.getTime())) return a;
  return !a || b < a ? b : a;
}

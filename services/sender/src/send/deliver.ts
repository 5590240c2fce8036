import {
  isDicomWebTarget,
  type SendFailureReason,
  type SendInstanceFailure,
  type SendRetryError,
  type SendTarget,
  type SendTargetOutcome,
} from '@dicomflow/messages';
import { sleep, type Logger, type TlsMaterial } from '@dicomflow/runtime';
import { AckBatcher, type AckStore } from '../db/ack-store.js';
import type { TokenSource } from './bearer-token.js';
import { DimseSession } from './dimse-session.js';
import type { OutputFeed, OutputInstance } from './output-feed.js';
import { statusFailure, targetFailure } from './retry-reason.js';
import { StowSession, type StowSettings } from './stow-session.js';
import { TargetQueue } from './target-queue.js';
import type { InstanceReport, TargetSession } from './target-session.js';

/** How hard to try one target. */
export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly initialMs: number;
  readonly maxMs: number;
  readonly timeoutMs: number;
}

/** A target that is tried again later: which, after which attempt, why, and when. */
export interface TargetRetry {
  readonly target: SendTarget;
  /** The attempt that failed (1: the first try). */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly nextAttemptAt: Date;
  readonly error: SendRetryError;
}

export interface DeliverDeps {
  readonly acks: AckStore;
  readonly callingAeTitle: string;
  readonly retry: RetryPolicy;
  /** Folder for instances converted to another little endian syntax. */
  readonly scratchDir: string;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** Called per instance a target stored (for metrics). */
  readonly onStored?: () => void;
  /** Called before each wait for a retry (to tell the tracker); must not throw. */
  readonly onRetry?: (retry: TargetRetry) => void;
  /** The operator's resend this delivery is (see {@link targetKey}); absent for the run's own delivery. */
  readonly resendId?: string;
  /** How DICOMweb targets are sent to. */
  readonly stow: StowSettings;
  /** CA and client certificate for DICOM nodes with `tls: true` (SEND_TLS_*). */
  readonly dimseTls?: TlsMaterial;
  /** A DICOMweb target's token or token_file, from its flow destination. */
  readonly credentials?: TokenSource;
}

/** Failures listed per target in a message (the counts stay exact). */
const MAX_LISTED_FAILURES = 100;

/**
 * The key a target's acknowledgements are stored under. A resend has keys of its own
 * (`...|resend:<resendId>`): it sends every instance again, whatever the run's own delivery or an earlier
 * resend acknowledged, while a redelivery of the same resend still skips what it already sent.
 */
export function targetKey(target: SendTarget, resendId?: string): string {
  const key = isDicomWebTarget(target)
    ? `${target.kind}|${target.url}`
    : `${target.kind}|${target.host}|${target.port}|${target.aeTitle}`;
  return resendId === undefined ? key : `${key}|resend:${resendId}`;
}

/**
 * Delay before attempt `attempt + 1`: doubling from `initialMs`, capped at `maxMs`, with "equal jitter"
 * (half fixed, half random), so replicas spread out but a retry never comes at once.
 */
export function retryDelay(attempt: number, policy: RetryPolicy): number {
  const capped = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(capped / 2 + Math.random() * (capped / 2));
}

/**
 * How long an open association waits for the download to spool the next instance before it is released
 * (a new one opens when more arrives). Below common peer idle timeouts (Orthanc: 30 s).
 */
const ASSOCIATION_IDLE_MS = 5000;

/**
 * Sends every instance of the output to the target as it is spooled, except those the target
 * acknowledged before. Attempts are rounds: a round opens an association and goes on until everything is
 * sent or it fails; an association released because a later instance needs a presentation context it did
 * not propose, or because the download stalled, is followed by another in the same round (`attempts`
 * counts rounds, i.e. the first try and each retry). Transient failures (no connection, timeout, abort,
 * transient rejection, 0xA7xx) are retried with backoff, resending only what was not acknowledged; a
 * permanent rejection ends at once; an instance the target refuses (SOP class, transfer syntax, other
 * failure status) is reported and not retried. Resolves once the output was read whole.
 *
 * A DICOMweb target goes the same way with STOW-RS requests in place of associations (see StowSession):
 * connection failures, timeouts, 408, 429 and 5xx are transient, other 4xx permanent (`rejected`), and
 * the FailedSOPSequence of an answer refuses (or, for 0xA7xx, defers) single instances.
 */
export async function deliverToTarget(
  runId: string,
  target: SendTarget,
  feed: OutputFeed,
  deps: DeliverDeps,
): Promise<SendTargetOutcome> {
  const key = targetKey(target, deps.resendId);
  const log = deps.logger.child({ target: key });
  const alreadyAcked = await deps.acks.acked(runId, key);
  const batcher = new AckBatcher(deps.acks, runId, key);
  const queue = new TargetQueue(feed, alreadyAcked, deps.signal);
  const idleMs = Math.max(1, Math.min(ASSOCIATION_IDLE_MS, Math.floor(deps.retry.timeoutMs / 2)));
  let storedNow = 0;
  const refused: SendInstanceFailure[] = [];
  /** Answered 0xA7xx in this round: sent again in the next one. */
  let deferred: OutputInstance[] = [];
  let deferredError: SendRetryError = { code: 'deferred', message: '' };
  let attempts = 0;
  let inRound = false;
  let associations = 0;
  let failure: { reason: SendFailureReason; message: string } | undefined;
  const report: InstanceReport = {
    async onStored(instance, status) {
      storedNow++;
      deps.onStored?.();
      await batcher.add({ member: instance.member, sopInstanceUid: instance.file.sopInstanceUid, status });
    },
    onRefused(instance, status, message) {
      refused.push({
        member: instance.member,
        sopInstanceUid: instance.file.sopInstanceUid,
        ...(status === undefined ? {} : { status }),
        message,
      });
    },
    onDeferred(instance, status, statusText) {
      deferred.push(instance);
      deferredError = statusFailure(status, statusText);
    },
  };
  /** After a round failed with `error`: waits before the next one; false when the attempts are used up. */
  const retryLater = async (error: SendRetryError): Promise<boolean> => {
    inRound = false;
    failure = { reason: 'unreachable', message: error.message };
    const maxAttempts = deps.retry.maxAttempts;
    if (attempts >= maxAttempts) return false;
    queue.putBack(deferred);
    deferred = [];
    const delayMs = retryDelay(attempts, deps.retry);
    const nextAttemptAt = new Date(Date.now() + delayMs);
    // The reason goes with the line: "retrying" alone does not tell a refused port from a full disk.
    log.warn(
      {
        attempt: attempts,
        maxAttempts,
        delayMs,
        nextAttemptAt: nextAttemptAt.toISOString(),
        err: error.message,
        code: error.code,
      },
      'retrying target',
    );
    deps.onRetry?.({ target, attempt: attempts, maxAttempts, nextAttemptAt, error });
    await sleep(delayMs, deps.signal);
    return true;
  };

  const session = openSession(target, deps, log);
  try {
    for (;;) {
      let next = await queue.next(idleMs);
      while (next === 'idle') next = await queue.next(idleMs);
      if (next === 'end') {
        if (deferred.length === 0) break;
        if (!(await retryLater(deferredError))) break;
        continue;
      }
      if (!inRound) {
        attempts++;
        inRound = true;
      }
      associations++;
      try {
        await session.send(queue, report, idleMs);
      } catch (err) {
        const failed = targetFailure(err);
        if (!failed) throw err;
        if (!failed.transient) {
          failure = { reason: failed.reason, message: failed.error.message };
          break;
        }
        if (!(await retryLater(failed.error))) break;
      }
    }
    // A target that gave up early still waits for the whole output: its counts cover every instance.
    while ((await feed.waitFor(Number.MAX_SAFE_INTEGER, idleMs, deps.signal)) !== 'end');
  } catch (err) {
    // Stopping, the download failing, or a local failure: keep what was acknowledged so far, then let
    // the message be retried.
    await batcher.flush().catch(() => undefined);
    throw err;
  } finally {
    session.close();
  }
  await batcher.flush();
  const instances = feed.instances;
  const stored = storedNow + instances.filter((i) => alreadyAcked.has(i.member)).length;
  const failed = instances.length - stored;
  if (stored > storedNow)
    log.info({ alreadyAcked: stored - storedNow }, 'skipped instances acknowledged before');
  if (failed > 0 && failed === refused.length)
    failure = {
      reason: 'instances-refused',
      message: `${refused.length} instance(s) refused by the node`,
    };
  const outcome: SendTargetOutcome = {
    target,
    sent: stored,
    failed,
    attempts,
    ...(failed > 0 && failure ? { reason: failure.reason, message: failure.message.slice(0, 4096) } : {}),
    failures: refused.slice(0, MAX_LISTED_FAILURES),
  };
  if (failed > 0)
    log.warn(
      { sent: stored, failed, attempts, associations, reason: outcome.reason },
      'target not fully delivered',
    );
  else log.info({ sent: stored, attempts, associations }, 'target delivered');
  return outcome;
}

/** How the target is sent to: C-STORE associations for a DICOM node, STOW-RS for a DICOMweb server. */
function openSession(target: SendTarget, deps: DeliverDeps, logger: Logger): TargetSession {
  if (!isDicomWebTarget(target)) return new DimseSession(target, deps);
  return new StowSession(target, {
    stow: deps.stow,
    retry: deps.retry,
    signal: deps.signal,
    logger,
    ...(deps.credentials === undefined ? {} : { credentials: deps.credentials }),
  });
}

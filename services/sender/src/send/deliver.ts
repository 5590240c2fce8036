import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import {
  convertLittleEndian,
  isStoredStatus,
  isTransientStatus,
  StoreAssociation,
  StoreScuError,
  type InstanceFile,
} from '@dicomflow/dicom';
import type {
  SendFailureReason,
  SendInstanceFailure,
  SendTarget,
  SendTargetOutcome,
} from '@dicomflow/messages';
import { sleep, type Logger } from '@dicomflow/runtime';
import { AckBatcher, type AckStore } from '../db/ack-store.js';
import { planContexts, sendableSyntaxes } from './contexts.js';
import type { OutputInstance } from './spool-output.js';

/** How hard to try one target. */
export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly initialMs: number;
  readonly maxMs: number;
  readonly timeoutMs: number;
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
}

/** Failures listed per target in a message (the counts stay exact). */
const MAX_LISTED_FAILURES = 100;

/** The key a target's acknowledgements are stored under. */
export function targetKey(target: SendTarget): string {
  return `${target.kind}|${target.host}|${target.port}|${target.aeTitle}`;
}

/**
 * Delay before attempt `attempt + 1`: doubling from `initialMs`, capped at `maxMs`, with "equal jitter"
 * (half fixed, half random), so replicas spread out but a retry never comes at once.
 */
export function retryDelay(attempt: number, policy: RetryPolicy): number {
  const capped = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(capped / 2 + Math.random() * (capped / 2));
}

/** What one association achieved. */
interface AttemptResult {
  /** Instances to try again in the next association (out of resources). */
  readonly again: OutputInstance[];
  readonly statusText?: string;
}

/**
 * Sends every instance the target has not acknowledged yet, one association per attempt, reused for all
 * instances. Transient failures (no connection, timeout, abort, transient rejection, 0xA7xx) are retried
 * with backoff, resending only what did not succeed; a permanent rejection ends at once; an instance the
 * target refuses (SOP class, transfer syntax, other failure status) is reported and not retried.
 */
export async function deliverToTarget(
  runId: string,
  target: SendTarget,
  instances: readonly OutputInstance[],
  deps: DeliverDeps,
): Promise<SendTargetOutcome> {
  const key = targetKey(target);
  const log = deps.logger.child({ target: key });
  const alreadyAcked = await deps.acks.acked(runId, key);
  const batcher = new AckBatcher(deps.acks, runId, key);
  let pending = instances.filter((instance) => !alreadyAcked.has(instance.member));
  let stored = instances.length - pending.length;
  const refused: SendInstanceFailure[] = [];
  const settled = new Set<string>();
  let attempts = 0;
  let failure: { reason: SendFailureReason; message: string } | undefined;
  if (pending.length < instances.length)
    log.info({ alreadyAcked: instances.length - pending.length }, 'skipping instances acknowledged before');

  try {
    while (pending.length > 0) {
      if (attempts > 0) {
        const delayMs = retryDelay(attempts, deps.retry);
        log.warn(
          { attempt: attempts, delayMs, pending: pending.length, err: failure?.message },
          'retrying target',
        );
        await sleep(delayMs, deps.signal);
      }
      attempts++;
      try {
        const result = await sendOnce(target, pending, deps, {
          onStored(instance, status) {
            batcher.add({ member: instance.member, sopInstanceUid: instance.file.sopInstanceUid, status });
            settled.add(instance.member);
            stored++;
            deps.onStored?.();
          },
          onRefused(instance, status, message) {
            settled.add(instance.member);
            refused.push({
              member: instance.member,
              sopInstanceUid: instance.file.sopInstanceUid,
              ...(status === undefined ? {} : { status }),
              message,
            });
          },
        });
        pending = result.again;
        failure =
          pending.length > 0
            ? { reason: 'unreachable', message: result.statusText ?? 'out of resources' }
            : undefined;
      } catch (err) {
        if (!(err instanceof StoreScuError)) throw err;
        // Instances stored or refused before the failure are settled; the rest go again.
        pending = pending.filter((instance) => !settled.has(instance.member));
        if (!err.transient) {
          failure = { reason: 'rejected', message: err.message };
          break;
        }
        failure = { reason: 'unreachable', message: err.message };
      }
      if (attempts >= deps.retry.maxAttempts) break;
    }
  } catch (err) {
    // Stopping or a local failure: keep what was acknowledged so far, then let the message be retried.
    await batcher.flush().catch(() => undefined);
    throw err;
  }
  await batcher.flush();
  if (pending.length === 0 && refused.length > 0)
    failure = {
      reason: 'instances-refused',
      message: `${refused.length} instance(s) refused by the node`,
    };
  const failed = instances.length - stored;
  const outcome: SendTargetOutcome = {
    target,
    sent: stored,
    failed,
    attempts,
    ...(failed > 0 && failure ? { reason: failure.reason, message: failure.message.slice(0, 4096) } : {}),
    failures: refused.slice(0, MAX_LISTED_FAILURES),
  };
  if (failed > 0)
    log.warn({ sent: stored, failed, attempts, reason: outcome.reason }, 'target not fully delivered');
  else log.info({ sent: stored, attempts }, 'target delivered');
  return outcome;
}

/** One association: sends `instances` in order; rejects with a StoreScuError when the association fails. */
async function sendOnce(
  target: SendTarget,
  instances: readonly OutputInstance[],
  deps: DeliverDeps,
  report: {
    onStored(instance: OutputInstance, status: number): void;
    onRefused(instance: OutputInstance, status: number | undefined, message: string): void;
  },
): Promise<AttemptResult> {
  const association = await StoreAssociation.open({
    host: target.host,
    port: target.port,
    callingAeTitle: deps.callingAeTitle,
    calledAeTitle: target.aeTitle,
    contexts: planContexts(instances),
    timeoutMs: deps.retry.timeoutMs,
  });
  const again: OutputInstance[] = [];
  let statusText: string | undefined;
  try {
    for (const [index, instance] of instances.entries()) {
      if (deps.signal.aborted) throw new Error('the sender is stopping');
      const context = association.contextFor(
        instance.file.sopClassUid,
        sendableSyntaxes(instance.file.transferSyntaxUid),
      );
      if (!context) {
        report.onRefused(
          instance,
          undefined,
          `the node accepted no presentation context for SOP class ${instance.file.sopClassUid} in transfer syntax ${instance.file.transferSyntaxUid}`,
        );
        continue;
      }
      let file: InstanceFile = instance.file;
      let converted: string | undefined;
      if (context.transferSyntaxUid !== file.transferSyntaxUid) {
        converted = join(deps.scratchDir, `converted-${process.hrtime.bigint()}.dcm`);
        try {
          file = await convertLittleEndian(file, context.transferSyntaxUid, converted);
        } catch (err) {
          await rm(converted, { force: true });
          report.onRefused(
            instance,
            undefined,
            `cannot convert to ${context.transferSyntaxUid}, the only syntax the node accepted: ${(err as Error).message}`,
          );
          continue;
        }
      }
      try {
        const response = await association.store(file, context.id, instances[index + 1]?.file);
        if (isStoredStatus(response.status)) report.onStored(instance, response.status);
        else if (isTransientStatus(response.status)) {
          again.push(instance);
          statusText = `C-STORE status 0x${hex(response.status)}${response.errorComment ? `: ${response.errorComment}` : ''}`;
        } else
          report.onRefused(
            instance,
            response.status,
            `C-STORE status 0x${hex(response.status)}${response.errorComment ? `: ${response.errorComment}` : ''}`,
          );
      } finally {
        if (converted) await rm(converted, { force: true });
      }
    }
  } catch (err) {
    association.abort();
    throw err;
  }
  await association.release();
  return { again, ...(statusText ? { statusText } : {}) };
}

const hex = (status: number): string => status.toString(16).toUpperCase().padStart(4, '0');

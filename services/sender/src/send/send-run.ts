import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PermanentError, TransientError, type Broker } from '@dicomflow/broker';
import {
  isDicomWebDestination,
  isDicomWebTarget,
  sendFailedMessageId,
  sendFinishedMessageId,
  sendStartedMessageId,
  sendTargetText,
  type FlowFinished,
  type SendTarget,
  type SendTargetOutcome,
} from '@dicomflow/messages';
import type { Logger, TlsMaterial } from '@dicomflow/runtime';
import { StorageError, type Storage } from '@dicomflow/storage';
import type { AckStore } from '../db/ack-store.js';
import { writeDeliveredManifest } from '../provenance/delivered-manifest.js';
import type { TokenSource } from './bearer-token.js';
import { deliverToTarget, targetKey, type RetryPolicy } from './deliver.js';
import { OutputFeed, type SkippedMember } from './output-feed.js';
import { RetryNotices } from './retry-notices.js';
import { sendSpan } from './send-span.js';
import { BadOutputTarError, spoolOutput } from './spool-output.js';
import type { StowSettings } from './stow-session.js';

/** The queue the sender consumes: `flow.finished` (see suiteQueues().sender). */
export const SENDER_QUEUE_ROLE = 'sender';

/** Data of one send job: the `flow.finished` of a run. */
export type SendJobData = Readonly<FlowFinished>;

/** What a send job needs. */
export interface SendJobDeps {
  readonly broker: Broker;
  readonly storage: Storage;
  readonly acks: AckStore;
  /** Runs `work` while no other delivery of the same run runs (see withRunLock). */
  readonly lockRun: (runId: string, work: () => Promise<void>) => Promise<void>;
  readonly callingAeTitle: string;
  readonly spoolDir: string;
  readonly retry: RetryPolicy;
  /** How DICOMweb destinations are sent to (SENDER_TOKEN_DIR, SEND_STOW_BATCH_*). */
  readonly stow: StowSettings;
  /** CA and client certificate for DICOM nodes with `tls: true` (SEND_TLS_*), read at start. */
  readonly dimseTls?: TlsMaterial;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** Delivery attempt of the message (1 first): an unreadable tar is read once more before it fails the run. */
  readonly attempt: number;
  readonly onStored?: () => void;
}

const MAX_LISTED_SKIPPED = 100;
/**
 * Reads of an unreadable tar before the run fails: the second read downloads it again, so a transfer cut
 * short is not mistaken for a corrupt object, while a corrupt one fails the run within seconds.
 */
const BAD_TAR_ATTEMPTS = 2;

/**
 * Every target of a run, each node once: the flow's destinations (DICOM nodes and DICOMweb servers, the
 * latter without their token), then the sender on each port.
 */
export function targetsOf(finished: SendJobData): SendTarget[] {
  const targets: SendTarget[] = [
    ...finished.destinations.map((d): SendTarget =>
      isDicomWebDestination(d)
        ? { kind: 'destination', url: d.url }
        : {
            kind: 'destination',
            host: d.host,
            port: d.port,
            aeTitle: d.ae_title,
            ...(d.tls === true ? { tls: true } : {}),
          },
    ),
    ...finished.returnToSender.ports.map((port) => ({
      kind: 'return-to-sender' as const,
      host: finished.returnToSender.host,
      port,
      aeTitle: finished.returnToSender.aeTitle,
    })),
  ];
  // The same node listed twice (e.g. as a destination and as the sender's port) gets the output once.
  const seen = new Set<string>();
  return targets.filter((target) => {
    const key = isDicomWebTarget(target) ? target.url : `${target.host}|${target.port}|${target.aeTitle}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The token or token_file of a DICOMweb target, from the first of the run's destinations with its URL
 * (the one targetsOf kept); undefined for a DICOM node or a server without either.
 */
export function credentialsOf(finished: SendJobData, target: SendTarget): TokenSource | undefined {
  if (!isDicomWebTarget(target)) return undefined;
  const destination = finished.destinations.find((d) => isDicomWebDestination(d) && d.url === target.url);
  if (destination === undefined || !isDicomWebDestination(destination)) return undefined;
  const { token, token_file } = destination;
  if (token === undefined && token_file === undefined) return undefined;
  return { ...(token === undefined ? {} : { token }), ...(token_file === undefined ? {} : { token_file }) };
}

/**
 * Sends a finished run's output to every target and publishes `send.started`, then `send.finished` or
 * `send.failed` (deterministic message ids, so a redelivery publishes the same messages again, never new
 * ones). Instances a target acknowledged before (an earlier delivery of the same message) are not sent
 * again. A resend (`finished.resend`) is a delivery of its own: its acknowledgements, message ids and
 * events are apart from the run's, so it sends everything again. Throws a TransientError when S3 or the
 * database fail, so the message is retried.
 */
export async function execSendJob(finished: SendJobData, deps: SendJobDeps): Promise<void> {
  await deps.lockRun(finished.runId, () => sendRun(finished, deps));
}

async function sendRun(finished: SendJobData, deps: SendJobDeps): Promise<void> {
  const resendId = finished.resend?.id;
  const log = deps.logger.child({ runId: finished.runId, ...(resendId === undefined ? {} : { resendId }) });
  const targets = targetsOf(finished);
  // A folder per delivery: the same run delivered twice at once (a redelivery) never shares files.
  const dir = join(deps.spoolDir, `${finished.runId}-${randomUUID()}`);
  let tarStream: Readable;
  try {
    tarStream = await deps.storage.getStream(finished.output.bucket, finished.output.key);
  } catch (err) {
    await failedRead(finished, deps, targets, err);
    return;
  }
  const feed = new OutputFeed();
  // Stops every target when the download fails (or something else does): the run is retried or failed.
  const abandon = new AbortController();
  const signal = AbortSignal.any([deps.signal, abandon.signal]);
  const notices = new RetryNotices(finished, deps.broker, log);
  try {
    // Targets start as soon as the first instance is spooled; the download goes on meanwhile.
    const spooled = spoolOutput(tarStream, dir, feed);
    spooled.catch(() => undefined);
    const delivering = Promise.allSettled(
      targets.map((target) =>
        sendSpan(finished.runId, target, () =>
          deliverToTarget(finished.runId, target, feed, {
            acks: deps.acks,
            callingAeTitle: deps.callingAeTitle,
            retry: deps.retry,
            stow: deps.stow,
            ...(deps.dimseTls ? { dimseTls: deps.dimseTls } : {}),
            scratchDir: dir,
            logger: log,
            signal,
            onRetry: (retry) => {
              notices.notify(retry);
            },
            ...(deps.onStored ? { onStored: deps.onStored } : {}),
            ...(resendId === undefined ? {} : { resendId }),
            ...withCredentials(credentialsOf(finished, target)),
          }),
        ),
      ),
    );
    let common: ReturnType<typeof commonFields>;
    try {
      await spooled;
      // Only now are the counts known, so send.started follows the download (sending may be under way).
      common = commonFields(finished, feed);
      if (feed.skipped.length > 0) {
        // Member names are chosen by the model and may carry anything: names only at debug level.
        log.warn({ skipped: feed.skipped.length }, 'output files that are not DICOM are not sent');
        log.debug({ skipped: feed.skipped.slice(0, MAX_LISTED_SKIPPED) }, 'files not sent');
      }
      await deps.broker.publish(
        'send.started',
        { ...common, startedAt: new Date().toISOString(), targets },
        { messageId: sendStartedMessageId(finished.runId, resendId), correlationId: finished.runId },
      );
      log.info({ instances: feed.instances.length, targets: targets.length }, 'output read; sending');
    } catch (err) {
      // Every target settles before anything else happens: none may keep sending from files about to be
      // removed. What they had acknowledged is recorded, so the next delivery does not send it again.
      abandon.abort(err);
      await delivering;
      if (err === feed.failure) {
        await failedRead(finished, deps, targets, err);
        return;
      }
      throw err;
    }
    const settled = await delivering;
    await notices.settled();
    const outcomes: SendTargetOutcome[] = [];
    for (const result of settled) {
      if (result.status === 'rejected') throw result.reason;
      outcomes.push(result.value);
    }
    const incomplete = outcomes.filter((o) => o.failed > 0);
    if (incomplete.length === 0) {
      // Which instance went where, for the tracker's provenance: in S3, named by the event, never listed in it.
      const delivered = await writeDeliveredManifest(
        deps,
        {
          runId: finished.runId,
          resendId,
          bucket: finished.output.bucket,
          targets: targets.map((target) => ({ target, key: targetKey(target, resendId) })),
        },
        dir,
      );
      await deps.broker.publish(
        'send.finished',
        { ...common, finishedAt: new Date().toISOString(), outcomes, delivered },
        { messageId: sendFinishedMessageId(finished.runId, resendId), correlationId: finished.runId },
      );
      log.info({ instances: feed.instances.length, targets: targets.length }, 'sent');
    } else {
      await deps.broker.publish(
        'send.failed',
        { ...common, failedAt: new Date().toISOString(), outcomes, message: summary(incomplete) },
        { messageId: sendFailedMessageId(finished.runId, resendId), correlationId: finished.runId },
      );
      log.warn({ failedTargets: incomplete.length }, 'send failed');
    }
  } finally {
    abandon.abort(new Error('the delivery is over'));
    // No notice outlives its delivery (a stopping sender closes the broker next).
    await notices.settled();
    await rm(dir, { recursive: true, force: true });
  }
}

function withCredentials(credentials: TokenSource | undefined): { credentials?: TokenSource } {
  return credentials === undefined ? {} : { credentials };
}

/** The run fields and counts every send event carries. */
function commonFields(finished: SendJobData, feed: OutputFeed) {
  return {
    runId: finished.runId,
    receiptId: finished.receiptId,
    flowName: finished.flowName,
    flowVersion: finished.flowVersion,
    flowFile: finished.flowFile,
    ...(finished.resend === undefined ? {} : { resend: finished.resend }),
    instanceCount: feed.instances.length,
    skipped: feed.skipped.length,
    ...skippedList(feed.skipped),
  };
}

/**
 * The output tar could not be read (whole): gone, or not a tar on its second read, fails the run;
 * anything else is thrown for the broker to retry (permanent storage errors dead-letter).
 */
async function failedRead(
  finished: SendJobData,
  deps: SendJobDeps,
  targets: SendTarget[],
  err: unknown,
): Promise<void> {
  const text = err instanceof Error ? err.message : String(err);
  if (err instanceof StorageError && err.kind === 'gone') {
    await publishFailed(finished, deps, { message: `the output tar is gone: ${text}`, targets });
    return;
  }
  if (err instanceof BadOutputTarError && deps.attempt >= BAD_TAR_ATTEMPTS) {
    await publishFailed(finished, deps, { message: text, targets });
    return;
  }
  if (err instanceof StorageError && err.kind === 'permanent') throw new PermanentError(text, { cause: err });
  throw new TransientError(`cannot read the output tar: ${text}`, { cause: err });
}

function skippedList(skipped: readonly SkippedMember[]): { skippedMembers?: SkippedMember[] } {
  if (skipped.length === 0) return {};
  return {
    skippedMembers: skipped
      .slice(0, MAX_LISTED_SKIPPED)
      .map((s) => ({ member: s.member.slice(0, 1024), reason: s.reason.slice(0, 1024) })),
  };
}

function summary(incomplete: readonly SendTargetOutcome[]): string {
  return incomplete
    .map(
      (o) =>
        `${sendTargetText(o.target)}: ${o.failed} not delivered (${o.reason ?? 'error'}${o.message ? `: ${o.message}` : ''})`,
    )
    .join('; ')
    .slice(0, 4096);
}

/**
 * `send.failed` when the output cannot be read whole. Instances a target acknowledged before the read
 * failed (in this or an earlier delivery) count as `sent`: they did arrive and are never sent again.
 */
async function publishFailed(
  finished: SendJobData,
  deps: SendJobDeps,
  why: { message: string; targets: SendTarget[] },
): Promise<void> {
  deps.logger.error({ runId: finished.runId, err: why.message }, 'cannot send the output');
  const sent = await Promise.all(
    why.targets.map(
      async (target) => (await deps.acks.acked(finished.runId, targetKey(target, finished.resend?.id))).size,
    ),
  );
  await deps.broker.publish(
    'send.failed',
    {
      runId: finished.runId,
      receiptId: finished.receiptId,
      flowName: finished.flowName,
      flowVersion: finished.flowVersion,
      flowFile: finished.flowFile,
      ...(finished.resend === undefined ? {} : { resend: finished.resend }),
      failedAt: new Date().toISOString(),
      instanceCount: 0,
      skipped: 0,
      outcomes: why.targets.map((target, n) => ({
        target,
        sent: sent[n] ?? 0,
        failed: 0,
        attempts: 0,
        reason: 'error' as const,
        message: why.message.slice(0, 4096),
        failures: [],
      })),
      message: why.message.slice(0, 4096),
    },
    { messageId: sendFailedMessageId(finished.runId, finished.resend?.id), correlationId: finished.runId },
  );
}

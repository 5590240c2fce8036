import { v5 as uuidv5 } from 'uuid';

/**
 * Deterministic message ids of a run's messages. A message published again (after a crash between its
 * publish and recording that it was published) carries the same id, so a receiver dedupes by message id:
 * delivery is at least once, processing must be once per id.
 */

/**
 * Namespace of DicomFlow's name-based (UUIDv5) ids (run ids, `flow.matched` message ids). Fixed forever:
 * changing it would give a redelivered receipt new run ids, and its runs would start a second time.
 */
export const DICOMFLOW_ID_NAMESPACE = '5b1f6c2e-8d1a-4b7e-9a53-0c6f2d4e8a71';

/** `job.cpu` / `job.gpu` of step `step`: `<runId>:job:<step>`. */
export function jobMessageId(runId: string, step: number): string {
  return `${runId}:job:${step}`;
}

/** `job.finished` of step `step`: `<runId>:job.finished:<step>`. */
export function jobFinishedMessageId(runId: string, step: number): string {
  return `${runId}:job.finished:${step}`;
}

/** `job.failed` of step `step`: `<runId>:job.failed:<step>`. */
export function jobFailedMessageId(runId: string, step: number): string {
  return `${runId}:job.failed:${step}`;
}

/** `flow.finished` of a run: `<runId>:flow.finished`. */
export function flowFinishedMessageId(runId: string): string {
  return `${runId}:flow.finished`;
}

/** `flow.failed` of a run: `<runId>:flow.failed`. */
export function flowFailedMessageId(runId: string): string {
  return `${runId}:flow.failed`;
}

/** `job.started` of step `step`: `<runId>:job.started:<step>`. */
export function jobStartedMessageId(runId: string, step: number): string {
  return `${runId}:job.started:${step}`;
}

/** The part of a send event's id that tells a resend apart: `:resend:<resendId>`, or nothing. */
function resendPart(resendId: string | undefined): string {
  return resendId === undefined ? '' : `:resend:${resendId}`;
}

/** `send.started` of a run: `<runId>:send.started`, of a resend `<runId>:resend:<resendId>:send.started`. */
export function sendStartedMessageId(runId: string, resendId?: string): string {
  return `${runId}${resendPart(resendId)}:send.started`;
}

/** `send.finished` of a run: `<runId>:send.finished`, of a resend `<runId>:resend:<resendId>:send.finished`. */
export function sendFinishedMessageId(runId: string, resendId?: string): string {
  return `${runId}${resendPart(resendId)}:send.finished`;
}

/** `send.failed` of a run: `<runId>:send.failed`, of a resend `<runId>:resend:<resendId>:send.failed`. */
export function sendFailedMessageId(runId: string, resendId?: string): string {
  return `${runId}${resendPart(resendId)}:send.failed`;
}

/** The `flow.finished` of an operator's resend of a run's output: `<runId>:resend:<resendId>`. */
export function resendMessageId(runId: string, resendId: string): string {
  return `${runId}:resend:${resendId}`;
}

/** The `flow.rerun` of an operator's rerun of a run: `<runId>:rerun:<rerunId>` (the repeated run's id). */
export function rerunMessageId(runId: string, rerunId: string): string {
  return `${runId}:rerun:${rerunId}`;
}

/**
 * The id of the new run that rerun `rerunId` of run `runId` starts. Name-based, so a rerun request
 * handled twice starts one run; never equal to a run id of a receipt (those are names of another form).
 */
export function rerunRunIdFor(runId: string, rerunId: string): string {
  return uuidv5(`rerun\n${runId.toLowerCase()}\n${rerunId.toLowerCase()}`, DICOMFLOW_ID_NAMESPACE);
}

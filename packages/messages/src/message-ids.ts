/**
 * Deterministic message ids of a run's messages. A message published again (after a crash between its
 * publish and recording that it was published) carries the same id, so a receiver dedupes by message id:
 * delivery is at least once, processing must be once per id.
 */

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

/** `send.started` of a run: `<runId>:send.started`. */
export function sendStartedMessageId(runId: string): string {
  return `${runId}:send.started`;
}

/** `send.finished` of a run: `<runId>:send.finished`. */
export function sendFinishedMessageId(runId: string): string {
  return `${runId}:send.finished`;
}

/** `send.failed` of a run: `<runId>:send.failed`. */
export function sendFailedMessageId(runId: string): string {
  return `${runId}:send.failed`;
}

import { randomUUID } from 'node:crypto';
import {
  resendMessageId,
  sendFailedMessageId,
  sendFinishedMessageId,
  sendStartedMessageId,
  type FlowFinished,
  type Resend,
} from '@dicomflow/messages';
import type { RunStory, StoryEvent } from './run-story.js';

/** How a test resend goes. */
export interface ResendOptions {
  /** When the operator asked (default: an hour after the run's first event). */
  requestedAt?: Date;
  /** The sender fails it (unreachable). */
  fails?: boolean;
  /** Stop after `send.started` (still sending). */
  noOutcome?: boolean;
  /** Stop after the request (the sender has not begun). */
  requestOnly?: boolean;
  /** The resend (default: a new one at `requestedAt`). */
  resend?: Resend;
  /** Leave out the request (the tracker published it already). */
  noRequest?: boolean;
}

/**
 * The events of one operator's resend of `story`'s run, as the tracker and the sender publish them: the
 * run's `flow.finished` again with a `resend`, then the sender's `send.started` and `send.finished` (or
 * `send.failed`), all tagged with it.
 */
export function resendStory(
  story: RunStory,
  opts: ResendOptions = {},
): { resend: Resend; events: StoryEvent[] } {
  const finished = story.events.find(
    (e): e is StoryEvent & { event: { routingKey: 'flow.finished'; body: FlowFinished } } =>
      e.event.routingKey === 'flow.finished',
  )?.event.body;
  if (!finished) throw new Error('the story has no flow.finished to resend');
  const requestedAt = opts.resend
    ? new Date(opts.resend.requestedAt)
    : (opts.requestedAt ?? new Date(new Date(finished.finishedAt).getTime() + 3_600_000));
  const resend: Resend = opts.resend ?? { id: randomUUID(), requestedAt: requestedAt.toISOString() };
  const at = (seconds: number): string => new Date(requestedAt.getTime() + seconds * 1000).toISOString();
  const { runId } = story;
  const run = {
    runId,
    receiptId: finished.receiptId,
    flowName: finished.flowName,
    flowVersion: finished.flowVersion,
    flowFile: finished.flowFile,
    resend,
  };
  const target = { kind: 'destination' as const, host: 'pacs.example', port: 104, aeTitle: 'PACS' };
  const events: StoryEvent[] = opts.noRequest
    ? []
    : [
        {
          messageId: resendMessageId(runId, resend.id),
          event: { routingKey: 'flow.finished', body: { ...finished, resend } },
        },
      ];
  if (opts.requestOnly) return { resend, events };
  events.push({
    messageId: sendStartedMessageId(runId, resend.id),
    event: {
      routingKey: 'send.started',
      body: { ...run, startedAt: at(1), targets: [target], instanceCount: 5, skipped: 0 },
    },
  });
  if (opts.noOutcome) return { resend, events };
  events.push(
    opts.fails
      ? {
          messageId: sendFailedMessageId(runId, resend.id),
          event: {
            routingKey: 'send.failed',
            body: {
              ...run,
              failedAt: at(5),
              instanceCount: 5,
              skipped: 0,
              outcomes: [
                {
                  target,
                  sent: 0,
                  failed: 5,
                  attempts: 2,
                  reason: 'rejected',
                  message: 'called AE title not recognised',
                  failures: [],
                },
              ],
              message: 'PACS@pacs.example:104: 5 not delivered (rejected)',
            },
          },
        }
      : {
          messageId: sendFinishedMessageId(runId, resend.id),
          event: {
            routingKey: 'send.finished',
            body: {
              ...run,
              finishedAt: at(5),
              instanceCount: 5,
              skipped: 0,
              outcomes: [{ target, sent: 5, failed: 0, attempts: 1, failures: [] }],
            },
          },
        },
  );
  return { resend, events };
}

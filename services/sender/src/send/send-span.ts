import {
  isDicomWebTarget,
  sendTargetText,
  type SendTarget,
  type SendTargetOutcome,
} from '@dicomflow/messages';
import { inSpan, markSpanError } from '@dicomflow/runtime';

/**
 * Runs one target's delivery in a `send` span (a child of the flow.finished message's span): which node,
 * how many instances it acknowledged and how many it did not; a target left with failures marks the span
 * as an error.
 */
export function sendSpan(
  runId: string,
  target: SendTarget,
  deliver: () => Promise<SendTargetOutcome>,
): Promise<SendTargetOutcome> {
  return inSpan(
    'send',
    {
      kind: 'client',
      attributes: {
        'dicomflow.run_id': runId,
        'dicomflow.target': sendTargetText(target),
        'dicomflow.protocol': isDicomWebTarget(target) ? 'stow-rs' : 'dimse',
      },
    },
    async (span) => {
      const outcome = await deliver();
      span.setAttributes({
        'dicomflow.sent': outcome.sent,
        'dicomflow.failed': outcome.failed,
        'dicomflow.attempts': outcome.attempts,
      });
      if (outcome.failed > 0)
        markSpanError(span, outcome.reason ?? `${outcome.failed} instance(s) not acknowledged`);
      return outcome;
    },
  );
}

import type { DeliveryContext } from '@dicomflow/broker';
import { inSpan } from '@dicomflow/runtime';
import type { Decision, RunStore } from '../db/run-store.js';
import type { Dispatcher } from '../dispatch/dispatcher.js';
import type { SchedulerMetrics } from '../metrics.js';

/** What every scheduler handler needs. */
export interface HandlerDeps {
  readonly store: RunStore;
  readonly dispatcher: Dispatcher;
  readonly metrics: SchedulerMetrics;
}

/**
 * Finishes handling a message once its decision is recorded: publishes the dispatch it implies unless that
 * was published already. The handler resolves (and the message is acked) only after that.
 */
export async function settleDecision(
  decision: Decision,
  ctx: DeliveryContext,
  deps: HandlerDeps,
): Promise<void> {
  if (decision.kind === 'ignore') {
    deps.metrics.ignored.inc({ routing_key: ctx.routingKey });
    ctx.logger.warn({ why: decision.why }, 'message ignored');
    return;
  }
  await deps.dispatcher.ensurePublished(decision.dispatch);
  if (!decision.created) {
    deps.metrics.duplicates.inc({ routing_key: ctx.routingKey });
    ctx.logger.info(
      { dispatch: decision.dispatch.messageId },
      'already handled: its dispatch was decided by an earlier delivery',
    );
  }
}

/**
 * Runs one scheduler handler's work (record the decision, publish its dispatch) in a `schedule` span, so
 * the trace shows what the scheduler decided and when the next message went out.
 */
export function scheduleSpan(
  ctx: Pick<DeliveryContext, 'routingKey'>,
  runId: string,
  work: () => Promise<void>,
): Promise<void> {
  return inSpan(
    'schedule',
    { attributes: { 'dicomflow.run_id': runId, 'dicomflow.decided_by': ctx.routingKey } },
    work,
  );
}

import type { Broker, Subscription } from '@dicomflow/broker';
import { SCHEDULER_MAX_ATTEMPTS, SCHEDULER_PREFETCH, SCHEDULER_RETRY_DELAYS_MS } from '../queues.js';
import { scheduleSpan, settleDecision, type HandlerDeps } from './settle.js';

/** `flow.matched`: records the run and publishes its first job (or its failure when it has no model). */
export async function consumeFlowMatched(
  broker: Broker,
  queue: string,
  deps: HandlerDeps,
): Promise<Subscription> {
  return broker.consume(
    {
      queue,
      bindings: ['flow.matched'],
      prefetch: SCHEDULER_PREFETCH,
      maxAttempts: SCHEDULER_MAX_ATTEMPTS,
      retryDelaysMs: SCHEDULER_RETRY_DELAYS_MS,
    },
    (matched, ctx) =>
      scheduleSpan(ctx, matched.runId, async () => {
        const decision = await deps.store.recordFlowMatched(matched, new Date());
        if (decision.kind === 'dispatch' && decision.created) {
          const run = { runId: matched.runId, flowFile: matched.flowFile, steps: matched.flow.models.length };
          if (decision.dispatch.routingKey === 'flow.failed')
            ctx.logger.warn(run, 'run failed: the flow has no models');
          else ctx.logger.info(run, 'run started');
        }
        await settleDecision(decision, ctx, deps);
      }),
  );
}

import type { Broker, Subscription } from '@dicomflow/broker';
import { SCHEDULER_MAX_ATTEMPTS, SCHEDULER_PREFETCH, SCHEDULER_RETRY_DELAYS_MS } from '../queues.js';
import { scheduleSpan, settleDecision, type HandlerDeps } from './settle.js';

/** `job.finished`: records the step's end and publishes the next job, or `flow.finished` after the last. */
export async function consumeJobFinished(
  broker: Broker,
  queue: string,
  deps: HandlerDeps,
): Promise<Subscription> {
  return broker.consume(
    {
      queue,
      bindings: ['job.finished'],
      prefetch: SCHEDULER_PREFETCH,
      maxAttempts: SCHEDULER_MAX_ATTEMPTS,
      retryDelaysMs: SCHEDULER_RETRY_DELAYS_MS,
    },
    (finished, ctx) =>
      scheduleSpan(ctx, finished.runId, async () => {
        const decision = await deps.store.recordJobFinished(finished, ctx.messageId, new Date());
        if (
          decision.kind === 'dispatch' &&
          decision.created &&
          decision.dispatch.routingKey === 'flow.finished'
        ) {
          ctx.logger.info({ runId: finished.runId, steps: finished.step + 1 }, 'run finished');
        }
        await settleDecision(decision, ctx, deps);
      }),
  );
}

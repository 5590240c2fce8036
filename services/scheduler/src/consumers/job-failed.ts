import type { Broker, Subscription } from '@dicomflow/broker';
import { SCHEDULER_MAX_ATTEMPTS, SCHEDULER_PREFETCH, SCHEDULER_RETRY_DELAYS_MS } from '../queues.js';
import { scheduleSpan, settleDecision, type HandlerDeps } from './settle.js';

/** `job.failed`: records the step's failure and publishes `flow.failed` with the reason. */
export async function consumeJobFailed(
  broker: Broker,
  queue: string,
  deps: HandlerDeps,
): Promise<Subscription> {
  return broker.consume(
    {
      queue,
      bindings: ['job.failed'],
      prefetch: SCHEDULER_PREFETCH,
      maxAttempts: SCHEDULER_MAX_ATTEMPTS,
      retryDelaysMs: SCHEDULER_RETRY_DELAYS_MS,
    },
    (failed, ctx) =>
      scheduleSpan(ctx, failed.runId, async () => {
        const decision = await deps.store.recordJobFailed(failed, ctx.messageId, new Date());
        if (decision.kind === 'dispatch' && decision.created) {
          ctx.logger.warn({ runId: failed.runId, step: failed.step, reason: failed.reason }, 'run failed');
        }
        await settleDecision(decision, ctx, deps);
      }),
  );
}

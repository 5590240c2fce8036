import type { Broker, Subscription } from '@dicomflow/broker';
import type { DeliveryStore } from '../db/delivery-store.js';
import { execSendJob, type SendJobDeps } from '../send/send-run.js';

/** Unacked flow.finished messages one replica works on at once (each sends to all its targets). */
export const SENDER_PREFETCH = 2;
/** Transient failures (S3, database or RabbitMQ away) are retried this often before dead-lettering. */
export const SENDER_MAX_ATTEMPTS = 10;
/** Delays between those attempts; the last one repeats. */
export const SENDER_RETRY_DELAYS_MS: readonly number[] = [1000, 5000, 30_000, 120_000];

/** What the consumer passes to every job besides the delivery's own details. */
export type FlowFinishedDeps = Omit<SendJobDeps, 'broker' | 'logger' | 'attempt'> & {
  readonly deliveries: DeliveryStore;
};

/** `flow.finished`: sends the run's output to its destinations and back to the sender. */
export async function consumeFlowFinished(
  broker: Broker,
  queue: string,
  deps: FlowFinishedDeps,
): Promise<Subscription> {
  return broker.consume(
    {
      queue,
      bindings: ['flow.finished'],
      prefetch: SENDER_PREFETCH,
      maxAttempts: SENDER_MAX_ATTEMPTS,
      retryDelaysMs: SENDER_RETRY_DELAYS_MS,
    },
    async (finished, ctx) => {
      const { deliveries, ...jobDeps } = deps;
      await execSendJob(finished, {
        ...jobDeps,
        // Recorded under the run's lock, so the janitor (which takes the same lock) never sees a delivery
        // begin between its check and its removal of the run's outputs.
        lockRun: (runId, work) =>
          deps.lockRun(runId, () => deliveries.track(runId, finished.output.bucket, work)),
        broker,
        logger: ctx.logger,
        attempt: ctx.attempt,
      });
    },
  );
}

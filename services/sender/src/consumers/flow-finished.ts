import type { Broker, Subscription } from '@dicomflow/broker';
import { execSendJob, type SendJobDeps } from '../send/send-run.js';

/** Unacked flow.finished messages one replica works on at once (each sends to all its targets). */
export const SENDER_PREFETCH = 2;
/** Transient failures (S3, database or RabbitMQ away) are retried this often before dead-lettering. */
export const SENDER_MAX_ATTEMPTS = 10;
/** Delays between those attempts; the last one repeats. */
export const SENDER_RETRY_DELAYS_MS: readonly number[] = [1000, 5000, 30_000, 120_000];

/** What the consumer passes to every job besides the delivery's own details. */
export type FlowFinishedDeps = Omit<SendJobDeps, 'broker' | 'logger' | 'attempt'>;

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
      await execSendJob(finished, {
        ...deps,
        broker,
        logger: ctx.logger,
        attempt: ctx.attempt,
      });
    },
  );
}

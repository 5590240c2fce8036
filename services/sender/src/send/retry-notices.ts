import type { Broker } from '@dicomflow/broker';
import type { FlowFinished } from '@dicomflow/messages';
import type { Logger } from '@dicomflow/runtime';
import type { TargetRetry } from './deliver.js';

/** Longest error text a `send.retrying` carries (its schema's limit). */
const MAX_ERROR_CHARS = 1024;

/**
 * Publishes a `send.retrying` per retry of a run's targets, so that the tracker can say which destination
 * the run waits for, why and until when. A notice is progress, not a result: one that cannot be published
 * is logged and dropped, and never holds up or fails the delivery (the retry itself goes on meanwhile).
 */
export class RetryNotices {
  readonly #pending = new Set<Promise<void>>();

  constructor(
    private readonly finished: Readonly<FlowFinished>,
    private readonly broker: Pick<Broker, 'publish'>,
    private readonly logger: Logger,
  ) {}

  /** Starts publishing the notice of `retry` (see {@link settled}). */
  notify(retry: TargetRetry): void {
    const publishing = this.#publish(retry, new Date())
      .catch((err: unknown) => {
        this.logger.warn(
          { err: err instanceof Error ? err.message : String(err), attempt: retry.attempt },
          'cannot publish send.retrying',
        );
      })
      .finally(() => this.#pending.delete(publishing));
    this.#pending.add(publishing);
  }

  /**
   * Resolves once every notice started so far was published or given up (never rejects). Awaited before
   * the outcome is published, so the tracker mostly sees the notices first (it does not depend on it).
   */
  async settled(): Promise<void> {
    await Promise.all([...this.#pending]);
  }

  async #publish(retry: TargetRetry, retryingAt: Date): Promise<void> {
    const f = this.finished;
    await this.broker.publish(
      'send.retrying',
      {
        runId: f.runId,
        receiptId: f.receiptId,
        flowName: f.flowName,
        flowVersion: f.flowVersion,
        flowFile: f.flowFile,
        ...(f.resend === undefined ? {} : { resend: f.resend }),
        retryingAt: retryingAt.toISOString(),
        target: retry.target,
        attempt: retry.attempt,
        maxAttempts: retry.maxAttempts,
        nextAttemptAt: retry.nextAttemptAt.toISOString(),
        error: {
          code: retry.error.code.slice(0, 64),
          message: retry.error.message.slice(0, MAX_ERROR_CHARS),
        },
      },
      // A new message id each time (the broker's default): see SendRetrying in @dicomflow/messages.
      { correlationId: f.runId },
    );
  }
}

import type { Broker } from '@dicomflow/broker';
import type { MessageOf } from '@dicomflow/messages';
import type { Logger } from '@dicomflow/runtime';
import type { PendingDispatch, RunStore, StoredDispatch } from '../db/run-store.js';
import type { SchedulerMetrics } from '../metrics.js';

/** How many pending dispatches one sweep takes at most. */
const SWEEP_BATCH = 500;

/**
 * Publishes recorded dispatches with publisher confirms, each under its deterministic message id, and marks
 * them published. Delivery is at least once: a crash after RabbitMQ confirmed a message but before the
 * mark was committed publishes it again with the same message id, which receivers dedupe.
 */
export class Dispatcher {
  readonly #store: RunStore;
  readonly #broker: () => Broker;
  readonly #metrics: SchedulerMetrics;
  readonly #log: Logger;

  constructor(deps: { store: RunStore; broker: () => Broker; metrics: SchedulerMetrics; logger: Logger }) {
    this.#store = deps.store;
    this.#broker = deps.broker;
    this.#metrics = deps.metrics;
    this.#log = deps.logger;
  }

  /**
   * Makes sure `dispatch` is published before the message that decided it is acked: publishes it if still
   * pending, waiting for another handler or sweep that holds it right now. Resolves true when this call
   * published it.
   */
  async ensurePublished(dispatch: StoredDispatch): Promise<boolean> {
    if (dispatch.state === 'dispatched') return false;
    return this.#store.publishPending(dispatch.messageId, (pending) => this.#publish(pending), {
      skipLocked: false,
    });
  }

  /**
   * Publishes every dispatch recorded but not confirmed (left by a crash, or by a message that was
   * dead-lettered after its dispatch was recorded). Dispatches a live handler is publishing are skipped.
   * Returns how many it published.
   */
  async sweep(): Promise<number> {
    let published = 0;
    for (const messageId of await this.#store.pendingDispatches(SWEEP_BATCH)) {
      const done = await this.#store.publishPending(messageId, (pending) => this.#publish(pending), {
        skipLocked: true,
      });
      if (done) {
        published++;
        this.#metrics.republished.inc();
        this.#log.info({ messageId }, 'published a dispatch left pending (after a restart or failure)');
      }
    }
    return published;
  }

  async #publish(dispatch: PendingDispatch): Promise<void> {
    // The body was validated against its routing key's schema before it was recorded; the broker checks again.
    await this.#broker().publish(
      dispatch.routingKey,
      dispatch.body as MessageOf<typeof dispatch.routingKey>,
      {
        messageId: dispatch.messageId,
        correlationId: dispatch.runId,
        priority: dispatch.priority,
      },
    );
    this.#metrics.dispatched.inc({ routing_key: dispatch.routingKey });
    this.#log.info(
      {
        runId: dispatch.runId,
        step: dispatch.step,
        routingKey: dispatch.routingKey,
        priority: dispatch.priority,
        messageId: dispatch.messageId,
      },
      'dispatched',
    );
  }
}

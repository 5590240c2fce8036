import type { OutputInstance } from './output-feed.js';
import type { TargetQueue } from './target-queue.js';

/** How a session reports each instance it settled. */
export interface InstanceReport {
  /** Sending waits for the promise: it holds back while too many acknowledgements are not yet durable. */
  onStored(instance: OutputInstance, status: number): Promise<void>;
  onRefused(instance: OutputInstance, status: number | undefined, message: string): void;
  /** Not stored for now (0xA7xx, out of resources): to send again in the next round. */
  onDeferred(instance: OutputInstance, status: number, statusText: string): void;
}

/**
 * One target's way of sending (C-STORE associations, STOW-RS requests), used by deliverToTarget for every
 * round of the target's delivery.
 */
export interface TargetSession {
  /**
   * Sends from the queue what is at hand (and, on an association, what comes within `idleMs`), reporting
   * each instance. Resolves when it stopped without failing; rejects when the connection or request failed
   * (a StoreScuError or StowError, transient or not), after putting what was in flight back in the queue.
   */
  send(queue: TargetQueue, report: InstanceReport, idleMs: number): Promise<void>;
  /** Releases what the session keeps between rounds (connections). */
  close(): void;
}

import { computeBackoff, inSpan, sleep } from '@dicomflow/runtime';
import type { Logger } from '@dicomflow/runtime';
import type { SealedGroup } from '../spool/grouper.js';
import { execPublishReceipt } from './publish-receipt.js';
import type { PublishReceiptDeps } from './publish-receipt.js';
import type { StudyReceived } from '@dicomflow/messages';

export interface ReceiptWorkerOptions {
  readonly concurrency: number;
  readonly retry: { readonly initialMs: number; readonly maxMs: number };
  readonly onPublished?: (message: StudyReceived, group: SealedGroup) => void;
}

/**
 * Publishes sealed groups in the background. A group that fails (S3 or broker away) is retried with capped
 * exponential backoff until it goes through or the worker closes; it is never dropped, and after a restart
 * the spool recovery hands it back.
 */
export class ReceiptWorker {
  private readonly queue: SealedGroup[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private failing = 0;

  constructor(
    private readonly deps: PublishReceiptDeps,
    private readonly logger: Logger,
    private readonly options: ReceiptWorkerOptions,
  ) {}

  /** Queues a sealed group for publishing. */
  enqueue(group: SealedGroup): void {
    if (this.abort.signal.aborted) return;
    this.queue.push(group);
    this.pump();
  }

  /** Groups waiting or being published. */
  backlog(): number {
    return this.queue.length + this.running.size;
  }

  /** Groups whose last attempt failed and are waiting to retry. */
  failingCount(): number {
    return this.failing;
  }

  /** Stops retrying and waits for attempts under way; unpublished groups stay in the spool. */
  async close(): Promise<void> {
    this.abort.abort();
    this.queue.length = 0;
    await Promise.allSettled([...this.running]);
  }

  private pump(): void {
    while (this.running.size < this.options.concurrency && this.queue.length > 0) {
      const group = this.queue.shift();
      if (!group) return;
      const work = this.publishUntilDone(group).finally(() => {
        this.running.delete(work);
        this.pump();
      });
      this.running.add(work);
    }
  }

  private async publishUntilDone(group: SealedGroup): Promise<void> {
    const log = this.logger.child({ receiptId: group.manifest.receiptId });
    for (let attempt = 1; !this.abort.signal.aborted; attempt++) {
      try {
        // One trace per receipt: it continues the association's and goes on in every service downstream.
        const message = await inSpan(
          'receipt',
          {
            parent: group.trace,
            root: group.trace === undefined,
            attributes: { 'dicomflow.receipt_id': group.manifest.receiptId, 'dicomflow.attempt': attempt },
          },
          () => execPublishReceipt(this.deps, group),
        );
        if (attempt > 1) this.failing -= 1;
        if (message) {
          log.info(
            { instances: message.instanceCount, tarSize: message.tarSize, attempt },
            'receipt published',
          );
          this.options.onPublished?.(message, group);
        } else {
          log.info('empty group removed');
        }
        return;
      } catch (err) {
        if (attempt === 1) this.failing += 1;
        const delay = computeBackoff(attempt, { ...this.options.retry, jitter: true });
        log.warn({ err, attempt, retryInMs: delay }, 'publishing a receipt failed; will retry');
        try {
          await sleep(delay, this.abort.signal);
        } catch {
          break;
        }
      }
    }
    // Closed before success: the failing count no longer matters; the spool keeps the group.
  }
}

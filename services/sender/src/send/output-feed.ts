import type { InstanceFile } from '@dicomflow/dicom';

/** One DICOM file of the output, by its tar member name. */
export interface OutputInstance {
  readonly member: string;
  readonly file: InstanceFile;
}

/** A member that is not sent, and why. */
export interface SkippedMember {
  readonly member: string;
  readonly reason: string;
}

/** What waiting for the instance after the ones already taken gave. */
export type FeedWait = 'ready' | 'end' | 'idle';

/**
 * The instances of an output as they are spooled (tar order), shared by every target's sender: each
 * target reads it at its own pace while the download goes on. Ends when the whole tar was read, or fails
 * with the download's error (then no sender may report the run finished).
 */
export class OutputFeed {
  readonly #instances: OutputInstance[] = [];
  readonly #skipped: SkippedMember[] = [];
  #ended = false;
  #failure: Error | undefined;
  #wakers = new Set<() => void>();

  /** The instances spooled so far. */
  get instances(): readonly OutputInstance[] {
    return this.#instances;
  }

  get skipped(): readonly SkippedMember[] {
    return this.#skipped;
  }

  /** True once the whole tar was read (and every member is in {@link instances} or {@link skipped}). */
  get ended(): boolean {
    return this.#ended;
  }

  get failure(): Error | undefined {
    return this.#failure;
  }

  add(instance: OutputInstance): void {
    this.#instances.push(instance);
    this.#wake();
  }

  skip(member: SkippedMember): void {
    this.#skipped.push(member);
  }

  end(): void {
    this.#ended = true;
    this.#wake();
  }

  fail(error: Error): void {
    this.#failure ??= error;
    this.#wake();
  }

  /**
   * Waits until there is an instance at `index` ('ready'), the feed ended before it ('end'), or
   * `idleMs` passed without either ('idle'). Rejects with the download's error, or when `signal` aborts.
   */
  async waitFor(index: number, idleMs: number, signal: AbortSignal): Promise<FeedWait> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      signal.throwIfAborted();
      if (index < this.#instances.length) return 'ready';
      if (this.#ended) return 'end';
      const woken = await new Promise<boolean>((resolve) => {
        const onWake = (): void => {
          cleanup();
          resolve(true);
        };
        const timer = setTimeout(() => {
          cleanup();
          resolve(false);
        }, idleMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          this.#wakers.delete(onWake);
          signal.removeEventListener('abort', onWake);
        };
        this.#wakers.add(onWake);
        signal.addEventListener('abort', onWake, { once: true });
      });
      if (!woken) return 'idle';
    }
  }

  #wake(): void {
    const wakers = [...this.#wakers];
    this.#wakers.clear();
    for (const wake of wakers) wake();
  }
}

import type { OutputFeed, OutputInstance } from './output-feed.js';

/**
 * What one target still has to send, in order: instances put back after a failed association first, then
 * the output's instances as they are spooled, leaving out those the target acknowledged in an earlier
 * delivery of the run.
 */
export class TargetQueue {
  readonly #feed: OutputFeed;
  readonly #alreadyAcked: ReadonlySet<string>;
  readonly #signal: AbortSignal;
  #backlog: OutputInstance[] = [];
  #cursor = 0;

  constructor(feed: OutputFeed, alreadyAcked: ReadonlySet<string>, signal: AbortSignal) {
    this.#feed = feed;
    this.#alreadyAcked = alreadyAcked;
    this.#signal = signal;
  }

  /** The next instance to send, when one is at hand (never waits). */
  peek(): OutputInstance | undefined {
    if (this.#backlog.length > 0) return this.#backlog[0];
    this.#skipAcked();
    return this.#feed.instances[this.#cursor];
  }

  /** Removes the instance {@link peek} gave. */
  take(): OutputInstance {
    const next = this.#backlog.shift();
    if (next) return next;
    this.#skipAcked();
    const instance = this.#feed.instances[this.#cursor];
    if (!instance) throw new Error('nothing to take');
    this.#cursor++;
    return instance;
  }

  /** Puts instances back in front, in their order (they go again before anything new). */
  putBack(instances: readonly OutputInstance[]): void {
    this.#backlog.unshift(...instances);
  }

  /** Every instance at hand now, next first: what an association about to open should cover. */
  atHand(): OutputInstance[] {
    this.#skipAcked();
    return [
      ...this.#backlog,
      ...this.#feed.instances.slice(this.#cursor).filter((i) => !this.#alreadyAcked.has(i.member)),
    ];
  }

  /**
   * Waits for an instance to send: 'ready', 'end' when the output is read and nothing is left, 'idle' when
   * `idleMs` passed with nothing new. Rejects with the download's error or when the signal aborts.
   */
  async next(idleMs: number): Promise<'ready' | 'end' | 'idle'> {
    for (;;) {
      if (this.peek()) return 'ready';
      const got = await this.#feed.waitFor(this.#cursor, idleMs, this.#signal);
      if (got !== 'ready') return got;
    }
  }

  #skipAcked(): void {
    const instances = this.#feed.instances;
    while (this.#cursor < instances.length && this.#alreadyAcked.has(instances[this.#cursor]?.member ?? ''))
      this.#cursor++;
  }
}

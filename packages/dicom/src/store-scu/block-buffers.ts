import { readSync } from 'node:fs';

/** Bytes read from a file at once: a few PDVs, sent in one corked write. */
export const READ_BLOCK = 2 * 1024 * 1024;

/** A block read into one of the pool's buffers; `release` must be called once its bytes are written. */
export interface Block {
  readonly bytes: Buffer;
  /** Hands the buffer back once `written` settles (the socket no longer references its bytes). */
  release(written: Promise<void>): void;
}

/**
 * Two reusable read buffers per association, used in turn: one is being sent while the next block is read
 * into the other. Reusing them keeps a large send from allocating (and garbage-collecting) a fresh buffer
 * per instance; a buffer is only refilled after the socket finished writing what it held.
 */
export class BlockBuffers {
  readonly #buffers: Buffer[] = [];
  readonly #free: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  #next = 0;

  /**
   * Reads up to `length` (at most READ_BLOCK) bytes at `position` of the open file `fd` into the next
   * buffer once it is free. The read itself is synchronous: a page-cache copy of at most READ_BLOCK took
   * less than the thread pool's round trip on the 2-core test machine (as the sender's spool writes).
   */
  async read(fd: number, position: number, length: number): Promise<Block> {
    const index = this.#next;
    this.#next ^= 1;
    await this.#free[index];
    const buffer = (this.#buffers[index] ??= Buffer.allocUnsafeSlow(READ_BLOCK));
    const wanted = Math.min(length, READ_BLOCK);
    let filled = 0;
    while (filled < wanted) {
      const bytesRead = readSync(fd, buffer, filled, wanted - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    let released = false;
    return {
      bytes: buffer.subarray(0, filled),
      release: (written) => {
        if (released) return;
        released = true;
        this.#free[index] = written.catch(() => undefined);
      },
    };
  }
}

import { close, open, rm } from 'node:fs';

/** A spool file created and open for writing. */
export interface OpenSpoolFile {
  readonly path: string;
  readonly fd: number;
}

/**
 * Creates the next instances' spool files ahead of time. Creating a file is the costliest step of starting
 * an instance (measured 20-300 µs per open, by where the directory lies on disk and what else writes to
 * it), and a sender waits for each C-STORE response before it sends the next instance, so after answering
 * that is when the next file is created, off the path between an instance's last byte and its response.
 * It is created in libuv's thread pool, not on the event loop: with several associations at once there
 * is no idle moment on the one thread they share, and the creating runs on another core meanwhile.
 *
 * A reserved file is an empty `.part` in the spool's incoming folder, which a restart clears.
 */
export class SpoolFileReserve {
  private readonly spares: OpenSpoolFile[] = [];
  private readonly creating = new Set<Promise<void>>();
  private closed = false;

  /**
   * @param depth How many files to keep ready. More than one: a sender's next instance often arrives
   *   before the file created after the last answer is ready (measured: one spare was missing for about
   *   a third of the instances of a fast sender, and the synchronous fallback open then blocked the event
   *   loop every association shares for ~0.25 ms).
   * @param remove Deletes an unused spare (the spool's discard, so it stops counting the path as in use).
   */
  constructor(
    private readonly newPath: () => string,
    private readonly depth = 3,
    private readonly remove: (path: string) => Promise<void> = removeFile,
  ) {}

  /** A reserved file, if one is ready; the caller then owns it. */
  takeSpare(): OpenSpoolFile | undefined {
    return this.spares.shift();
  }

  /** Starts creating spare files until `depth` are ready or on their way. */
  prepareSoon(): void {
    while (!this.closed && this.spares.length + this.creating.size < this.depth) this.createOne();
  }

  /** Resolves once no spare is being created. */
  async settled(): Promise<void> {
    await Promise.all([...this.creating]);
  }

  /** Closes and removes the unused spares (ones still being created go once they exist); nothing more is reserved. */
  close(): void {
    this.closed = true;
    for (const spare of this.spares.splice(0)) this.discardFile(spare);
  }

  private createOne(): void {
    const path = this.newPath();
    const creating: Promise<void> = new Promise<void>((resolve) => {
      open(path, 'wx', (err, fd) => {
        this.creating.delete(creating);
        // On failure the instance's stream creates its file itself and reports what goes wrong then.
        if (err) this.remove(path).catch(() => undefined);
        else if (this.closed) this.discardFile({ path, fd });
        else this.spares.push({ path, fd });
        resolve();
      });
    });
    this.creating.add(creating);
  }

  /** An empty leftover in the incoming folder harms nothing and goes later, so errors are ignored. */
  private discardFile({ path, fd }: OpenSpoolFile): void {
    close(fd, () => {
      this.remove(path).catch(() => undefined);
    });
  }
}

function removeFile(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    rm(path, { force: true }, (err) => {
      if (err) reject(err);
      else resolve();
    });
  });
}

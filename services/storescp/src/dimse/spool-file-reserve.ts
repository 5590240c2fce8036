import { close, open, rm } from 'node:fs';

/** A spool file created and open for writing. */
export interface OpenSpoolFile {
  readonly path: string;
  readonly fd: number;
}

/**
 * Creates the next instance's spool file ahead of time. Creating a file is the costliest step of starting
 * an instance (measured 20-300 µs per open, by where the directory lies on disk and what else writes to
 * it), and a sender waits for each C-STORE response before it sends the next instance, so after answering
 * that is when the next file is created, off the path between an instance's last byte and its response.
 * It is created in libuv's thread pool, not on the event loop: with several associations at once there
 * is no idle moment on the one thread they share, and the creating runs on another core meanwhile.
 *
 * A reserved file is an empty `.part` in the spool's incoming folder, which a restart clears.
 */
export class SpoolFileReserve {
  private spare: OpenSpoolFile | undefined;
  private creating: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly newPath: () => string) {}

  /** The reserved file, if one is ready; the caller then owns it. */
  takeSpare(): OpenSpoolFile | undefined {
    const spare = this.spare;
    this.spare = undefined;
    return spare;
  }

  /** Starts creating a spare file unless one is ready or on its way. */
  prepareSoon(): void {
    if (this.spare || this.creating || this.closed) return;
    const path = this.newPath();
    this.creating = new Promise<void>((resolve) => {
      open(path, 'wx', (err, fd) => {
        this.creating = undefined;
        // On failure the instance's stream creates its file itself and reports what goes wrong then.
        if (!err) {
          if (this.closed) discardFile({ path, fd });
          else this.spare = { path, fd };
        }
        resolve();
      });
    });
  }

  /** Resolves once no spare is being created. */
  async settled(): Promise<void> {
    await this.creating;
  }

  /** Closes and removes an unused spare (one still being created goes once it exists); nothing more is reserved. */
  close(): void {
    this.closed = true;
    const spare = this.spare;
    this.spare = undefined;
    if (spare) discardFile(spare);
  }
}

/** An empty leftover in the incoming folder harms nothing and goes at the next start, so errors are ignored. */
function discardFile({ path, fd }: OpenSpoolFile): void {
  close(fd, () => {
    rm(path, { force: true }, () => undefined);
  });
}

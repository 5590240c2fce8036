import { closeSync, openSync, rmSync } from 'node:fs';

/** A spool file created and open for writing. */
export interface OpenSpoolFile {
  readonly path: string;
  readonly fd: number;
}

/**
 * Creates the next instance's spool file ahead of time. Creating a file is the costliest step of starting
 * an instance (measured 20-300 µs per open, by where the directory lies on disk and what else writes to
 * it), and a sender waits for each C-STORE response before it sends the next instance, so after answering
 * the receiver sits idle: that is when the next file is created, off the path between an instance's last
 * byte and its response.
 *
 * A reserved file is an empty `.part` in the spool's incoming folder, which a restart clears.
 */
export class SpoolFileReserve {
  private spare: OpenSpoolFile | undefined;
  private scheduled = false;
  private closed = false;

  constructor(private readonly newPath: () => string) {}

  /** The reserved file, if one is ready; the caller then owns it. */
  takeSpare(): OpenSpoolFile | undefined {
    const spare = this.spare;
    this.spare = undefined;
    return spare;
  }

  /** Creates a spare file once the events already due have run (so never ahead of received data). */
  prepareSoon(): void {
    if (this.spare || this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.spare || this.closed) return;
      try {
        this.spare = create(this.newPath());
      } catch {
        // the instance's stream creates its file itself and reports what goes wrong then
      }
    });
  }

  /** Closes and removes an unused spare; nothing is reserved afterwards. */
  close(): void {
    this.closed = true;
    const spare = this.spare;
    this.spare = undefined;
    if (!spare) return;
    try {
      closeSync(spare.fd);
      rmSync(spare.path, { force: true });
    } catch {
      // an empty leftover in the incoming folder harms nothing and goes at the next start
    }
  }
}

function create(path: string): OpenSpoolFile {
  return { path, fd: openSync(path, 'wx') };
}

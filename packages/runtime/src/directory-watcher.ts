import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';

export interface DirectoryWatcherOptions {
  /** Quiet time after the last event before `onChange` runs (editors write a file in several steps). */
  readonly debounceMs: number;
  /**
   * Interval of a full rescan whatever the events say: covers file systems without change events (NFS,
   * some bind mounts) and a directory that was removed and created again.
   */
  readonly rescanMs: number;
}

/**
 * Calls `onChange` (debounced) whenever something in `directory` changes: a file added, written, renamed
 * (editors that save by writing a temporary file and renaming it over the original) or removed. The
 * directory is watched, not the files, so a file replaced by a rename is still seen. A directory that does
 * not exist yet, or is removed and created again, is watched again once it is there.
 */
export class DirectoryWatcher {
  #watcher: FSWatcher | undefined;
  #watchedInode: number | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #rescan: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly directory: string,
    private readonly onChange: () => void,
    private readonly logger: Logger,
    private readonly options: DirectoryWatcherOptions,
  ) {}

  /** Starts watching (and the periodic rescan). */
  async start(): Promise<void> {
    await this.#ensureWatching();
    this.#rescan = setInterval(() => {
      void this.#ensureWatching().then(() => {
        this.#schedule();
      });
    }, this.options.rescanMs);
    this.#rescan.unref();
  }

  /** Stops watching; no `onChange` call starts after this. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#rescan);
    clearTimeout(this.#debounce);
    this.#stopWatching();
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      if (!this.#closed) this.onChange();
    }, this.options.debounceMs);
    this.#debounce.unref();
  }

  /** Watches the directory unless already watching this very directory (same inode). */
  async #ensureWatching(): Promise<void> {
    let inode: number;
    try {
      const info = await stat(this.directory);
      if (!info.isDirectory()) throw new Error('not a directory');
      inode = info.ino;
    } catch (err) {
      if (this.#watcher)
        this.logger.warn(
          { err, directory: this.directory },
          'watched folder is gone; watching for it to return',
        );
      this.#stopWatching();
      return;
    }
    if (this.#closed || (this.#watcher && this.#watchedInode === inode)) return;
    this.#stopWatching();
    try {
      const watcher = watch(this.directory, { persistent: false }, () => {
        this.#schedule();
      });
      watcher.on('error', (err) => {
        this.logger.warn(
          { err, directory: this.directory },
          'watching the folder failed; relying on rescans until it is back',
        );
        if (this.#watcher === watcher) this.#stopWatching();
        this.#schedule();
      });
      this.#watcher = watcher;
      this.#watchedInode = inode;
      this.logger.debug({ directory: this.directory }, 'watching the folder');
    } catch (err) {
      this.logger.warn(
        { err, directory: this.directory },
        'cannot watch the folder; relying on periodic rescans',
      );
    }
  }

  #stopWatching(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#watchedInode = undefined;
  }
}

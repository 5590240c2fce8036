import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { computeBackoff, type Logger } from '@dicomflow/runtime';
import type { StaticStorageMetrics } from '../metrics.js';
import { Sha256Stream, sha256OfFile } from '../store/hashing.js';
import type { StaticItem, StaticStore } from '../store/static-store.js';
import { tarProblem } from '../store/tar-check.js';
import { nameOfTarFile, TAR_SUFFIX } from '../static-name.js';

/** Tuning of {@link DirectorySync}. */
export interface DirectorySyncOptions {
  /** A file modified less than this long ago is left for a later sync (it is probably still being copied). */
  readonly settleMs: number;
}

// Least pause before syncing again a file that was changing.
const MIN_RESYNC_DELAY_MS = 1000;

/** A file of the folder that was not synced, and why. */
export interface SkippedFile {
  readonly file: string;
  readonly reason: string;
}

/** What one sync did. */
export interface SyncReport {
  readonly finishedAt: string;
  /** Valid `<name>.tar` files in the folder. */
  readonly files: number;
  readonly uploaded: readonly string[];
  readonly unchanged: number;
  readonly removed: readonly string[];
  readonly skipped: readonly SkippedFile[];
  /** Set when the folder itself could not be read (nothing was removed then). */
  readonly directoryError?: string;
}

interface LocalFile {
  readonly name: string;
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

// What identifies a file's content without reading it again (a change rewrites at least the mtime).
interface HashedVersion {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly sha256: string;
  readonly tarProblem: string | undefined;
}

/**
 * Keeps the bucket in line with the `<name>.tar` files of the static folder: a new or changed file is
 * uploaded with its sha256 (an object with the same sha256 is left alone), and an object this sync
 * uploaded (metadata `source: directory`) whose file left the folder is removed. Objects uploaded over
 * HTTP or put there by hand are never removed. Syncs run one at a time; a request during a sync runs
 * one more afterwards. A failed sync is retried with backoff.
 */
export class DirectorySync {
  readonly #hashed = new Map<string, HashedVersion>();
  readonly #stopping = new AbortController();
  #running: Promise<void> | undefined;
  #pending = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #later: NodeJS.Timeout | undefined;
  #last: SyncReport | undefined;
  #lastError: string | undefined;

  constructor(
    private readonly directory: string,
    private readonly store: StaticStore,
    private readonly logger: Logger,
    private readonly metrics: StaticStorageMetrics,
    private readonly options: DirectorySyncOptions,
  ) {}

  /** Asks for a sync; resolves when no sync is running or pending any more. */
  request(): Promise<void> {
    if (this.#stopping.signal.aborted) return Promise.resolve();
    if (this.#running) {
      this.#pending = true;
      return this.#running;
    }
    clearTimeout(this.#retry);
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** The last completed sync and the last failure, for `/readyz`. */
  status(): { directory: string; lastSync: SyncReport | undefined; lastError: string | undefined } {
    return { directory: this.directory, lastSync: this.#last, lastError: this.#lastError };
  }

  /** Whether `name.tar` is a file in the folder (the folder owns that name then). */
  async holds(name: string): Promise<boolean> {
    return stat(join(this.directory, `${name}${TAR_SUFFIX}`)).then(
      (info) => info.isFile(),
      () => false,
    );
  }

  /** Stops syncing: a running sync is aborted between files and awaited. */
  async close(): Promise<void> {
    this.#stopping.abort();
    clearTimeout(this.#retry);
    clearTimeout(this.#later);
    await this.#running;
  }

  async #loop(): Promise<void> {
    do {
      this.#pending = false;
      try {
        this.#last = await this.#syncOnce();
        this.#lastError = undefined;
        this.#failures = 0;
        this.metrics.syncs.inc({ outcome: 'ok' });
      } catch (err) {
        if (this.#stopping.signal.aborted) return;
        this.#failures += 1;
        this.#lastError = err instanceof Error ? err.message : String(err);
        this.metrics.syncs.inc({ outcome: 'failed' });
        const retryInMs = computeBackoff(this.#failures, { initialMs: 1000, maxMs: 60_000 });
        this.logger.error(
          { err, attempt: this.#failures, retryInMs },
          'static folder sync failed; will retry',
        );
        this.#retry = setTimeout(() => void this.request(), retryInMs);
        this.#retry.unref();
        return;
      }
    } while (this.#anotherRound());
  }

  // A method, not an inline test: the fields change while the loop awaits.
  #anotherRound(): boolean {
    return this.#pending && !this.#stopping.signal.aborted;
  }

  async #syncOnce(): Promise<SyncReport> {
    const signal = this.#stopping.signal;
    await this.store.ensureBucket();
    const remote = new Map((await this.store.list()).map((item) => [item.name, item]));
    const uploaded: string[] = [];
    const removed: string[] = [];
    const skipped: SkippedFile[] = [];
    // Names present in the folder, valid or not: their objects are never removed by this sync.
    const present = new Set<string>();
    let files = 0;
    let unchanged = 0;

    let entries: string[];
    try {
      entries = (await readdir(this.directory)).sort();
    } catch (err) {
      const directoryError = `cannot read the static folder ${this.directory}: ${(err as Error).message}`;
      this.logger.warn(
        { directory: this.directory, error: directoryError },
        'static folder unreadable; nothing removed',
      );
      return {
        finishedAt: new Date().toISOString(),
        files,
        uploaded,
        unchanged,
        removed,
        skipped,
        directoryError,
      };
    }

    for (const file of entries) {
      signal.throwIfAborted();
      // Hidden files are the temporary names of copies in progress (cp to .x.tar, then mv).
      if (file.startsWith('.') || !file.endsWith(TAR_SUFFIX)) continue;
      const name = nameOfTarFile(file);
      if (name === undefined) {
        skipped.push({
          file,
          reason: 'not a valid name (letters, digits, ".", "_", "-"; at most 128) + ".tar"',
        });
        continue;
      }
      present.add(name);
      const local = await this.#readLocal(name, join(this.directory, file), signal).catch((err: unknown) => {
        if (signal.aborted) throw err;
        return `cannot read it: ${(err as Error).message}`;
      });
      if (typeof local === 'string') {
        skipped.push({ file, reason: local });
        continue;
      }
      files += 1;
      if (remote.get(name)?.sha256 === local.sha256) {
        unchanged += 1;
        continue;
      }
      if (await this.#upload(local)) uploaded.push(name);
      else skipped.push({ file, reason: 'changed while it was uploaded; syncing again' });
    }

    for (const item of remote.values()) {
      if (!this.#ownedAndGone(item, present)) continue;
      signal.throwIfAborted();
      await this.store.remove(item.name);
      this.metrics.removed.inc({ source: 'directory' });
      removed.push(item.name);
      this.logger.info({ name: item.name }, 'static content removed: its file left the folder');
    }

    for (const problem of skipped) this.logger.warn(problem, 'static folder file not synced');
    if (uploaded.length > 0 || removed.length > 0) {
      this.logger.info({ files, uploaded, removed, unchanged }, 'static folder synced');
    }
    return { finishedAt: new Date().toISOString(), files, uploaded, unchanged, removed, skipped };
  }

  /** One more sync after a pause (not at once: a file being written would be hashed over and over). */
  #syncLater(): void {
    if (this.#later !== undefined || this.#stopping.signal.aborted) return;
    this.#later = setTimeout(
      () => {
        this.#later = undefined;
        void this.request();
      },
      Math.max(this.options.settleMs, MIN_RESYNC_DELAY_MS),
    );
    this.#later.unref();
  }

  #ownedAndGone(item: StaticItem, present: ReadonlySet<string>): boolean {
    return item.source === 'directory' && !present.has(item.name);
  }

  /** The file's size and sha256 (hashed again only when it changed), or why it cannot be synced now. */
  async #readLocal(name: string, path: string, signal: AbortSignal): Promise<LocalFile | string> {
    const before = await stat(path);
    if (!before.isFile()) return 'not a regular file';
    let version = this.#hashed.get(name);
    if (!version || !sameFile(version, before)) {
      // A file written moments ago is probably still being copied in: hashing it now would be wasted work.
      if (Date.now() - before.mtimeMs < this.options.settleMs) {
        this.#syncLater();
        return 'changed moments ago; syncing once it is settled';
      }
      const sha256 = await sha256OfFile(path, signal);
      const after = await stat(path);
      if (!sameFile({ size: before.size, mtimeMs: before.mtimeMs, ino: before.ino }, after)) {
        this.#syncLater();
        return 'still being written; syncing again';
      }
      version = {
        size: before.size,
        mtimeMs: before.mtimeMs,
        ino: before.ino,
        sha256,
        tarProblem: await tarProblem(path),
      };
      this.#hashed.set(name, version);
    }
    if (version.tarProblem !== undefined) return version.tarProblem;
    return { name, path, size: version.size, sha256: version.sha256 };
  }

  /** Uploads a file; false when its content changed under the upload (a sync is then requested again). */
  async #upload(local: LocalFile): Promise<boolean> {
    const hasher = new Sha256Stream();
    const reading = pipeline(createReadStream(local.path, { end: Math.max(local.size - 1, 0) }), hasher);
    await Promise.all([reading, this.store.put(local.name, hasher, local.size, local.sha256, 'directory')]);
    this.metrics.stored.inc({ source: 'directory' });
    this.metrics.storedBytes.inc({ source: 'directory' }, local.size);
    if (hasher.digest() === local.sha256) {
      this.logger.info(
        { name: local.name, size: local.size, sha256: local.sha256 },
        'static content uploaded from the folder',
      );
      return true;
    }
    // The object now carries the sha256 of the earlier content: the next sync sees a mismatch and re-uploads.
    this.#hashed.delete(local.name);
    this.#syncLater();
    this.logger.warn({ name: local.name }, 'static folder file changed during its upload; syncing again');
    return false;
  }
}

function sameFile(
  a: Pick<HashedVersion, 'size' | 'mtimeMs' | 'ino'>,
  b: Pick<HashedVersion, 'size' | 'mtimeMs' | 'ino'>,
): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

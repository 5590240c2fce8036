import type { Readable } from 'node:stream';
import type { Storage, StorageError } from '@dicomflow/storage';
import { nameOfTarFile, tarFileName } from '../static-name.js';

/**
 * S3 user metadata of every static object. `sha256` is the contract with the consumer (lower-case hex of
 * the tar bytes); `source` says who put it there, so that folder sync only ever removes what it uploaded.
 */
export const SHA256_METADATA = 'sha256';
export const SOURCE_METADATA = 'source';

/** Who put an object into the bucket: folder sync, the HTTP API, or someone else (no `source` metadata). */
export type StaticSource = 'directory' | 'upload' | 'unknown';

/** One static content item as stored. */
export interface StaticItem {
  readonly name: string;
  readonly size: number;
  /** Lower-case hex SHA-256 of the tar, or `null` for an object put into the bucket without one. */
  readonly sha256: string | null;
  readonly updated: Date;
  readonly source: StaticSource;
}

const TAR_CONTENT_TYPE = 'application/x-tar';
// Stats of a listing run a few at a time: a bucket of model weights holds tens of objects, not thousands.
const STAT_CONCURRENCY = 8;

/** The static bucket: `<name>.tar` objects with their sha256. Every failure is a StorageError. */
export class StaticStore {
  #bucketReady: Promise<void> | undefined;

  constructor(
    private readonly storage: Storage,
    readonly bucket: string,
  ) {}

  /** Creates the bucket unless it exists; remembered once it succeeded, retried after a failure. */
  ensureBucket(): Promise<void> {
    this.#bucketReady ??= this.storage.ensureBucket(this.bucket).catch((err: unknown) => {
      this.#bucketReady = undefined;
      throw err;
    });
    return this.#bucketReady;
  }

  /** The item called `name`, or `undefined` when there is none. */
  async get(name: string): Promise<StaticItem | undefined> {
    const key = tarFileName(name);
    const info = await this.storage.stat(this.bucket, key).catch(goneAsUndefined);
    if (!info) return undefined;
    // stat has no modification time; a one-key listing has.
    const listed = (await this.storage.list(this.bucket, key)).find((object) => object.key === key);
    return {
      name,
      size: info.size,
      sha256: shaOf(info.metadata),
      updated: listed?.lastModified ?? new Date(0),
      source: sourceOf(info.metadata),
    };
  }

  /** Every item, by name; objects whose key is not `<valid name>.tar` are left out. */
  async list(): Promise<StaticItem[]> {
    const objects = await this.storage.list(this.bucket).catch((err: unknown) => {
      goneAsUndefined(err);
      return [];
    });
    const named = objects.flatMap((object) => {
      const name = nameOfTarFile(object.key);
      return name === undefined ? [] : [{ name, object }];
    });
    const items: StaticItem[] = [];
    for (let i = 0; i < named.length; i += STAT_CONCURRENCY) {
      const batch = await Promise.all(
        named.slice(i, i + STAT_CONCURRENCY).map(async ({ name, object }) => {
          const info = await this.storage.stat(this.bucket, object.key);
          if (!info) return undefined; // removed since the listing
          const item: StaticItem = {
            name,
            size: info.size,
            sha256: shaOf(info.metadata),
            updated: object.lastModified,
            source: sourceOf(info.metadata),
          };
          return item;
        }),
      );
      for (const item of batch) if (item) items.push(item);
    }
    return items;
  }

  /** Stores `size` bytes of tar under `name` with its sha256 and source. */
  async put(
    name: string,
    body: Readable,
    size: number,
    sha256: string,
    source: Exclude<StaticSource, 'unknown'>,
  ): Promise<void> {
    await this.ensureBucket();
    await this.storage.putStream(this.bucket, tarFileName(name), body, size, {
      'content-type': TAR_CONTENT_TYPE,
      [SHA256_METADATA]: sha256,
      [SOURCE_METADATA]: source,
    });
  }

  /** Opens the tar of `name` for reading; a missing one fails with a StorageError of kind `gone`. */
  open(name: string): Promise<Readable> {
    return this.storage.getStream(this.bucket, tarFileName(name));
  }

  /** Removes `name`; removing one that is not there succeeds. */
  remove(name: string): Promise<void> {
    return this.storage.remove(this.bucket, tarFileName(name));
  }

  /** Readiness: S3 answers. */
  check(): Promise<void> {
    return this.storage.check();
  }
}

function shaOf(metadata: Record<string, string>): string | null {
  const value = metadata[SHA256_METADATA]?.toLowerCase();
  return value !== undefined && /^[0-9a-f]{64}$/.test(value) ? value : null;
}

function sourceOf(metadata: Record<string, string>): StaticSource {
  const value = metadata[SOURCE_METADATA];
  return value === 'directory' || value === 'upload' ? value : 'unknown';
}

// A bucket not created yet reads as empty.
function goneAsUndefined(err: unknown): undefined {
  if ((err as Partial<StorageError> | null)?.kind === 'gone') return undefined;
  throw err;
}

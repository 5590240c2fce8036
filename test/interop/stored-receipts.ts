// What our receiver stored, read back from S3 as any consumer of a receipt reads it: the index (JSON Lines)
// of every receipt in the incoming bucket, and the tar members (the stored Part-10 files) one asks for.
import { buffer } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import tar from 'tar-stream';
import { readReceiptIndex, type ReceiptIndexInstance } from '@dicomflow/messages';
import { createStorage, type Storage } from '@dicomflow/storage';
import { waitFor } from '@dicomflow/test-helpers';

const INDEX_SUFFIX = '.index.jsonl';
const POLL_MS = 250;

/** One stored instance: its index entry and where its file is. */
export interface StoredInstance {
  readonly receiptId: string;
  readonly tarKey: string;
  readonly entry: ReceiptIndexInstance;
}

/** The S3 client for an environment of the suite's keys (S3_ENDPOINT, S3_PORT, ...). */
export function storageFor(env: Readonly<Record<string, string | undefined>>): Storage {
  return createStorage({
    endPoint: env.S3_ENDPOINT ?? '127.0.0.1',
    port: Number(env.S3_PORT ?? 9000),
    useSSL: env.S3_USE_SSL === 'true',
    accessKey: env.S3_ACCESS_KEY ?? '',
    secretKey: env.S3_SECRET_KEY ?? '',
    partSize: Number(env.S3_PART_SIZE ?? 64 * 1024 * 1024),
  });
}

/** The receipts of one incoming bucket, indexed by SOP Instance UID as they appear. */
export class StoredReceipts {
  private readonly seen = new Set<string>();
  private readonly byUid = new Map<string, StoredInstance>();

  constructor(
    private readonly storage: Storage,
    private readonly bucket: string,
  ) {}

  /** Reads the indexes of receipts not read yet. */
  async refresh(): Promise<void> {
    for (const object of await this.storage.list(this.bucket)) {
      if (!object.key.endsWith(INDEX_SUFFIX) || this.seen.has(object.key)) continue;
      const index = await readReceiptIndex(await this.storage.getStream(this.bucket, object.key));
      this.seen.add(object.key);
      const tarKey = `${object.key.slice(0, -INDEX_SUFFIX.length)}.tar`;
      for (const entry of index.instances)
        this.byUid.set(entry.sopInstanceUid, { receiptId: index.receiptId, tarKey, entry });
    }
  }

  /** The stored instance with this SOP Instance UID, if a receipt read so far holds it. */
  get(sopInstanceUid: string): StoredInstance | undefined {
    return this.byUid.get(sopInstanceUid);
  }

  /** Waits (bounded) until a receipt holds the instance. */
  async waitFor(sopInstanceUid: string, timeoutMs = 60_000): Promise<StoredInstance> {
    let first = true;
    await waitFor(
      async () => {
        // Listing the bucket is not free: a few times a second is enough.
        if (!first) await sleep(POLL_MS);
        first = false;
        await this.refresh();
        return this.byUid.has(sopInstanceUid);
      },
      `a receipt holding ${sopInstanceUid}`,
      timeoutMs,
    );
    const found = this.byUid.get(sopInstanceUid);
    if (!found) throw new Error(`no receipt holds ${sopInstanceUid}`);
    return found;
  }

  /** The bytes of the stored file (a tar member) of an instance. */
  async member(stored: StoredInstance): Promise<Buffer> {
    const body = await this.storage.getStream(this.bucket, stored.tarKey);
    let found: Buffer | undefined;
    const extract = tar.extract();
    extract.on('entry', (header, stream, next) => {
      void buffer(stream).then((bytes) => {
        if (header.name === stored.entry.member) found = bytes;
        next();
      }, next);
    });
    await new Promise<void>((resolve, reject) => {
      extract.on('finish', resolve);
      extract.on('error', reject);
      body.pipe(extract);
    });
    if (!found) throw new Error(`${stored.tarKey} has no member ${stored.entry.member}`);
    return found;
  }
}

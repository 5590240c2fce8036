import { createHash, randomUUID } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker, type Broker } from '@dicomflow/broker';
import { createTarStream, inspectPart10File, type TarFileEntry } from '@dicomflow/dicom';
import { createLogger } from '@dicomflow/runtime';
import { createStorage, StorageError, type Storage } from '@dicomflow/storage';
import { generateCtSeries, newUid, testBrokerConfig, testStorageConfig } from '@dicomflow/test-helpers';
import { Spool, type GroupManifest } from '../spool/spool.js';
import { ReceiptCollector, readReceipt } from '../testing/receiver-harness.js';
import { EarlyReceiptUploads } from './early-upload.js';
import { execPublishReceipt } from './publish-receipt.js';
import { receiptKeys } from './receipt-keys.js';

const storage = createStorage(testStorageConfig());
const bucket = `incoming-${randomUUID().slice(0, 8)}`;
const logger = createLogger({ service: 'early-upload-test', level: 'silent' });
let work: string;
let broker: Broker;
let receipts: ReceiptCollector;
/** 24 CT instances of ~0.5 MB: more than two 5 MiB parts. */
let series: string[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-early-'));
  await storage.ensureBucket(bucket);
  broker = await connectBroker({ config: testBrokerConfig(), logger });
  receipts = await ReceiptCollector.open(bucket);
  series = await generateCtSeries(join(work, 'series'), 24, { studyInstanceUid: newUid() });
});

afterAll(async () => {
  await receipts.close();
  await broker.close();
  await storage.removeBucket(bucket).catch(() => undefined);
  await rm(work, { recursive: true, force: true });
});

/** A spool whose filed instances go to an early upload, as the service wires them. */
async function spoolWithEarly(name: string, store: Pick<Storage, 'beginUpload'> = storage) {
  const spool = new Spool(join(work, name), false);
  await spool.init();
  const finished: boolean[] = [];
  const uploads = new EarlyReceiptUploads({
    storage: store,
    bucket,
    tarSubdir: ['SeriesInstanceUID'],
    logger,
    bucketReady: () => Promise.resolve(),
    partBytes: 5 * 1024 * 1024,
  });
  spool.onFiled((dir, fileName, info) => {
    uploads.filed(dir, fileName, info);
  });
  const early = {
    finish: async (dir: string, entries: readonly TarFileEntry[]) => {
      const done = await uploads.finish(dir, entries);
      finished.push(done);
      return done;
    },
    drop: (dir: string) => uploads.drop(dir),
  };
  return { spool, uploads, early, finished };
}

function manifestOf(): GroupManifest {
  return {
    receiptId: randomUUID(),
    grouping: 'association',
    key: randomUUID(),
    callingAeTitle: 'CT1',
    calledAeTitle: 'STORESCP',
    callingHost: '127.0.0.1',
    createdAt: new Date().toISOString(),
  };
}

/** Files `files` into a new group of `spool`, in order, as the receiver does. */
async function fileInstances(
  spool: Spool,
  manifest: GroupManifest,
  files: readonly string[],
): Promise<string> {
  const dir = await spool.createGroup(manifest);
  for (const file of files) {
    const info = await inspectPart10File(file);
    const copy = join(work, `${randomUUID()}.part`);
    await cp(file, copy);
    await spool.admit(copy, dir, `${info.sopInstanceUid}.dcm`, info);
  }
  await spool.seal(dir);
  return dir;
}

async function sha256(stream: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest('hex');
}

describe('EarlyReceiptUploads', () => {
  it('uploads the receipt tar in parts while instances are filed; publishing only completes it', async () => {
    const { spool, early, finished, uploads } = await spoolWithEarly('spool-a');
    const manifest = manifestOf();
    // The tar the receipt must be, byte for byte: made before the group exists (the files move into it).
    const entries: TarFileEntry[] = [];
    for (const file of series) {
      const info = await inspectPart10File(file);
      entries.push({
        name: `${info.seriesInstanceUid}/${info.sopInstanceUid}.dcm`,
        path: file,
        size: info.size,
      });
    }
    const expected = await sha256(createTarStream(entries));
    const dir = await fileInstances(spool, manifest, series);
    expect(uploads.openCount).toBe(1);

    const message = await execPublishReceipt(
      { spool, storage, broker, bucket, tarSubdir: ['SeriesInstanceUID'], early },
      { manifest, dir },
    );
    expect(finished).toEqual([true]);
    expect(uploads.openCount).toBe(0);
    const { tarKey } = receiptKeys(manifest.receiptId);
    expect(message?.tarKey).toBe(tarKey);
    expect(await sha256(await storage.getStream(bucket, tarKey))).toBe(expected);
    expect((await storage.stat(bucket, tarKey))?.size).toBe(message?.tarSize);
    expect(await storage.incompleteUploads(bucket, tarKey)).toEqual([]);
    const [received] = await receipts.waitFor(1);
    if (!received) throw new Error('no study.received');
    const { index, members } = await readReceipt(storage, received);
    expect(index.instances.map((i) => i.member)).toEqual(entries.map((e) => e.name));
    for (const entry of entries) {
      // Buffer.equals: a deep toEqual of 0.5 MB buffers takes seconds each.
      expect(members.get(entry.name)?.equals(await readFile(entry.path)), entry.name).toBe(true);
    }
  });

  it('gives up on an instance received twice into a group: the whole tar is uploaded, holding its last version', async () => {
    const { spool, early, finished } = await spoolWithEarly('spool-b');
    const manifest = manifestOf();
    const twice = [...series.slice(0, 14), series[0] ?? '', ...series.slice(14)];
    const dir = await fileInstances(spool, manifest, twice);
    const message = await execPublishReceipt(
      { spool, storage, broker, bucket, tarSubdir: [], early },
      { manifest, dir },
    );
    expect(finished).toEqual([false]);
    expect(message?.instanceCount).toBe(series.length);
    const { tarKey } = receiptKeys(manifest.receiptId);
    expect(await storage.incompleteUploads(bucket, tarKey)).toEqual([]);
    const stored = (await receipts.waitFor(2)).find((m) => m.receiptId === manifest.receiptId);
    if (!stored) throw new Error('no study.received');
    const { members } = await readReceipt(storage, stored);
    expect(members.size).toBe(series.length);
  });

  it('falls back to the whole upload when S3 refuses the early one', async () => {
    const refusing: Pick<Storage, 'beginUpload'> = {
      beginUpload: () =>
        Promise.reject(new StorageError('transient', 'refused', { operation: 'beginUpload' })),
    };
    const { spool, early, finished } = await spoolWithEarly('spool-c', refusing);
    const manifest = manifestOf();
    const dir = await fileInstances(spool, manifest, series);
    const message = await execPublishReceipt(
      { spool, storage, broker, bucket, tarSubdir: [], early },
      { manifest, dir },
    );
    expect(finished).toEqual([false]);
    expect((await storage.stat(bucket, receiptKeys(manifest.receiptId).tarKey))?.size).toBe(message?.tarSize);
  });

  it('aborts the early upload of a group removed without a receipt, and of groups open at close', async () => {
    const { spool, uploads } = await spoolWithEarly('spool-d');
    const manifest = manifestOf();
    await fileInstances(spool, manifest, series);
    const { tarKey } = receiptKeys(manifest.receiptId);
    // Parts went up while filing: the upload exists until closed.
    for (let i = 0; i < 100 && (await storage.incompleteUploads(bucket, tarKey)).length === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await storage.incompleteUploads(bucket, tarKey)).toHaveLength(1);
    await uploads.close();
    expect(await storage.incompleteUploads(bucket, tarKey)).toEqual([]);
    expect(await storage.stat(bucket, tarKey)).toBeUndefined();
  });
});

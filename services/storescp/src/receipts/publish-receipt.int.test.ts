import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker, type Broker } from '@dicomflow/broker';
import { inspectPart10File } from '@dicomflow/dicom';
import { createLogger } from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { generateCtSeries, newUid, testBrokerConfig, testStorageConfig } from '@dicomflow/test-helpers';
import { Spool } from '../spool/spool.js';
import { ReceiptCollector, readReceipt } from '../testing/receiver-harness.js';
import { execPublishReceipt } from './publish-receipt.js';

const storage = createStorage(testStorageConfig());
const bucket = `incoming-${randomUUID().slice(0, 8)}`;
let work: string;
let broker: Broker;
let receipts: ReceiptCollector;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-publish-'));
  await storage.ensureBucket(bucket);
  broker = await connectBroker({
    config: testBrokerConfig(),
    logger: createLogger({ service: 'publish-test', level: 'silent' }),
  });
  receipts = await ReceiptCollector.open(bucket);
});

afterAll(async () => {
  await receipts.close();
  await broker.close();
  await storage.removeBucket(bucket).catch(() => undefined);
  await rm(work, { recursive: true, force: true });
});

describe('execPublishReceipt', () => {
  it('publishes the same receipt id and keys when repeated after a crash before the spool copy was removed', async () => {
    const spool = new Spool(join(work, 'spool'), false);
    await spool.init();
    const files = await generateCtSeries(join(work, 'series'), 3, { studyInstanceUid: newUid() });
    const manifest = {
      receiptId: randomUUID(),
      grouping: 'association' as const,
      key: 'assoc-1',
      callingAeTitle: 'CT1',
      calledAeTitle: 'STORESCP',
      callingHost: '127.0.0.1',
      createdAt: new Date().toISOString(),
    };
    const dir = await spool.createGroup(manifest);
    for (const [i, file] of files.entries()) {
      const info = await inspectPart10File(file);
      const copy = join(work, `in-${i}.dcm`);
      await cp(file, copy);
      await spool.admit(copy, dir, `${info.sopInstanceUid}.dcm`, info);
    }
    await spool.seal(dir);
    const backup = join(work, 'backup');
    await cp(dir, backup, { recursive: true });

    const deps = { spool, storage, broker, bucket, tarSubdir: [] };
    const first = await execPublishReceipt(deps, { manifest, dir });
    expect(await readdir(spool.groupsDir)).toEqual([]);
    // The process died after publishing but before removing the spool copy: the next start repeats it.
    await cp(backup, dir, { recursive: true });
    const second = await execPublishReceipt(deps, { manifest, dir });

    const messages = await receipts.waitFor(2);
    expect(messages.map((m) => m.receiptId)).toEqual([manifest.receiptId, manifest.receiptId]);
    expect(second?.tarKey).toBe(first?.tarKey);
    expect(second?.indexKey).toBe(first?.indexKey);
    expect(second?.tarSize).toBe(first?.tarSize);
    const last = messages[1];
    if (!last) throw new Error('second message missing');
    const { index, members } = await readReceipt(storage, last);
    expect(index.instances).toHaveLength(3);
    expect(members.size).toBe(3);
  });

  it('publishes nothing for a group without instances and removes it', async () => {
    const spool = new Spool(join(work, 'empty-spool'), false);
    await spool.init();
    const manifest = {
      receiptId: randomUUID(),
      grouping: 'study' as const,
      key: newUid(),
      callingAeTitle: 'CT1',
      calledAeTitle: 'STORESCP',
      callingHost: '127.0.0.1',
      createdAt: new Date().toISOString(),
    };
    const dir = await spool.createGroup(manifest);
    const result = await execPublishReceipt(
      { spool, storage, broker, bucket, tarSubdir: [] },
      { manifest, dir },
    );
    expect(result).toBeUndefined();
    expect(await readdir(spool.groupsDir)).toEqual([]);
  });
});

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorKind } from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { removeBucketAndObjects, testStorageConfig, uniqueBucketName } from '@dicomflow/storage/testing';
import { freePort } from '@dicomflow/test-helpers';
import { testStorage } from '../testing/environment.js';
import { fixtureInstance } from '../testing/receipts.js';
import { readReceiptIndex } from './read-receipt-index.js';

const storage = testStorage();
const bucket = uniqueBucketName('fp-index');

beforeAll(async () => {
  await storage.ensureBucket(bucket);
});
afterAll(async () => {
  await removeBucketAndObjects(storage, bucket);
});

async function failureOf(promise: Promise<unknown>): Promise<{ kind: string; message: string }> {
  const err = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(err instanceof Error)) throw new Error('expected a failure');
  return { kind: errorKind(err), message: err.message };
}

describe('readReceiptIndex', () => {
  it('reads and validates a stored index', async () => {
    const index = { receiptId: randomUUID(), instances: [fixtureInstance('a.dcm', { Modality: 'CT' })] };
    await storage.putBuffer(bucket, 'ok.index.json', JSON.stringify(index));
    await expect(
      readReceiptIndex(storage, { receiptId: index.receiptId, bucket, indexKey: 'ok.index.json' }, 1 << 20),
    ).resolves.toEqual(index);
  });

  it('is gone when the object or its bucket does not exist', async () => {
    const missing = await failureOf(
      readReceiptIndex(storage, { receiptId: randomUUID(), bucket, indexKey: 'nope.index.json' }, 1 << 20),
    );
    expect(missing.kind).toBe('gone');
    expect(missing.message).toContain(`${bucket}/nope.index.json`);
    const noBucket = await failureOf(
      readReceiptIndex(
        storage,
        { receiptId: randomUUID(), bucket: uniqueBucketName('fp-none'), indexKey: 'x.index.json' },
        1 << 20,
      ),
    );
    expect(noBucket.kind).toBe('gone');
  });

  it('is permanent when the object is not JSON, not an index, another receipt, or too big', async () => {
    const receiptId = randomUUID();
    await storage.putBuffer(bucket, 'text.index.json', 'DOE^JANE not json {');
    await storage.putBuffer(bucket, 'shape.index.json', JSON.stringify({ receiptId, files: [] }));
    await storage.putBuffer(
      bucket,
      'other.index.json',
      JSON.stringify({ receiptId: randomUUID(), instances: [] }),
    );
    const read = (indexKey: string, maxBytes = 1 << 20): Promise<{ kind: string; message: string }> =>
      failureOf(readReceiptIndex(storage, { receiptId, bucket, indexKey }, maxBytes));
    const notJson = await read('text.index.json');
    expect(notJson).toMatchObject({ kind: 'permanent', message: /not JSON/ });
    expect(notJson.message).not.toContain('DOE'); // the parser quotes the text; the error must not
    expect(await read('shape.index.json')).toMatchObject({ kind: 'permanent', message: /invalid/ });
    expect(await read('other.index.json')).toMatchObject({ kind: 'permanent', message: /belongs to/ });
    expect((await read('shape.index.json', 4)).kind).toBe('permanent');
  });

  it('is transient when S3 cannot be reached', async () => {
    const down = createStorage(testStorageConfig({ port: await freePort() }));
    const failure = await failureOf(
      readReceiptIndex(down, { receiptId: randomUUID(), bucket, indexKey: 'ok.index.json' }, 1 << 20),
    );
    expect(failure.kind).toBe('transient');
  });
});

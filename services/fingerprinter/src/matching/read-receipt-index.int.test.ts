import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFlow, parseFlow, type LoadedFlow } from '@dicomflow/flows';
import { formatReceiptIndex, formatReceiptIndexHeader } from '@dicomflow/messages';
import { errorKind } from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { removeBucketAndObjects, testStorageConfig, uniqueBucketName } from '@dicomflow/storage/testing';
import { freePort } from '@dicomflow/test-helpers';
import { testStorage } from '../testing/environment.js';
import { fixtureInstance } from '../testing/receipts.js';
import { matchReceipt } from './read-receipt-index.js';

const storage = testStorage();
const bucket = uniqueBucketName('fp-index');

function loaded(file: string, yaml: string): LoadedFlow {
  const parsed = parseFlow(yaml, file);
  if (!parsed.ok) throw new Error(`fixture flow invalid: ${JSON.stringify(parsed.problems)}`);
  return { file, flow: parsed.flow, hash: hashFlow(parsed.flow) };
}
const CT = loaded('/flows/ct.yaml', 'triggers:\n  - Modality: ^CT$\n');
const MR = loaded('/flows/mr.yaml', 'triggers:\n  - Modality: ^MR$\n');

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

describe('matchReceipt', () => {
  it('streams a stored index through every flow', async () => {
    const index = {
      receiptId: randomUUID(),
      instances: [
        fixtureInstance('a.dcm', { Modality: 'CT' }),
        fixtureInstance('b.dcm', { Modality: 'SR' }),
        fixtureInstance('c.dcm', { Modality: 'CT' }),
      ],
    };
    await storage.putBuffer(bucket, 'ok.index.jsonl', formatReceiptIndex(index));
    const matched = await matchReceipt(
      storage,
      { receiptId: index.receiptId, bucket, indexKey: 'ok.index.jsonl' },
      [CT, MR],
    );
    expect(matched.instances).toBe(3);
    expect(matched.matches.map((m) => [m.loaded.file, m.result.triggered, m.result.selected])).toEqual([
      ['/flows/ct.yaml', true, ['a.dcm', 'c.dcm']],
      ['/flows/mr.yaml', false, []],
    ]);
  });

  it('is gone when the object or its bucket does not exist', async () => {
    const missing = await failureOf(
      matchReceipt(storage, { receiptId: randomUUID(), bucket, indexKey: 'nope.index.jsonl' }, [CT]),
    );
    expect(missing.kind).toBe('gone');
    expect(missing.message).toContain(`${bucket}/nope.index.jsonl`);
    const noBucket = await failureOf(
      matchReceipt(
        storage,
        { receiptId: randomUUID(), bucket: uniqueBucketName('fp-none'), indexKey: 'x.index.jsonl' },
        [CT],
      ),
    );
    expect(noBucket.kind).toBe('gone');
  });

  it('is permanent when the object is not JSON Lines, not an index, another receipt, or cut short', async () => {
    const receiptId = randomUUID();
    const instance = fixtureInstance('a.dcm', { Modality: 'CT' });
    await storage.putBuffer(bucket, 'text.index.jsonl', 'DOE^JANE not json {');
    await storage.putBuffer(bucket, 'shape.index.jsonl', `${JSON.stringify({ receiptId, files: [] })}\n`);
    await storage.putBuffer(
      bucket,
      'other.index.jsonl',
      formatReceiptIndex({ receiptId: randomUUID(), instances: [] }),
    );
    await storage.putBuffer(
      bucket,
      'short.index.jsonl',
      formatReceiptIndexHeader({ receiptId, instanceCount: 2 }) + `${JSON.stringify(instance)}\n`,
    );
    const read = (indexKey: string): Promise<{ kind: string; message: string }> =>
      failureOf(matchReceipt(storage, { receiptId, bucket, indexKey }, [CT]));
    const notJson = await read('text.index.jsonl');
    expect(notJson).toMatchObject({ kind: 'permanent', message: /not JSON/ });
    expect(notJson.message).not.toContain('DOE'); // the parser quotes the text; the error must not
    expect(await read('shape.index.jsonl')).toMatchObject({
      kind: 'permanent',
      message: /not an index header/,
    });
    expect(await read('other.index.jsonl')).toMatchObject({ kind: 'permanent', message: /belongs to/ });
    expect(await read('short.index.jsonl')).toMatchObject({ kind: 'permanent', message: /cut short/ });
  });

  it('is transient when S3 cannot be reached', async () => {
    const down = createStorage(testStorageConfig({ port: await freePort() }));
    const failure = await failureOf(
      matchReceipt(down, { receiptId: randomUUID(), bucket, indexKey: 'ok.index.jsonl' }, [CT]),
    );
    expect(failure.kind).toBe('transient');
  });
});

import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeBucketAndObjects, uniqueBucketName } from '@dicomflow/storage/testing';
import { waitFor } from '@dicomflow/test-helpers';
import { testStorage } from './testing/environment.js';
import { readyz, startFingerprinter, type RunningFingerprinter } from './testing/fingerprinter-harness.js';
import { RabbitBus, type FlowMatchedCollector } from './testing/rabbit-bus.js';
import { fixtureInstance, putReceipt } from './testing/receipts.js';

const storage = testStorage();
const bucket = uniqueBucketName('fp-dir');
let work: string;
let flows: string;
let bus: RabbitBus;
let fingerprinter: RunningFingerprinter;
let collector: FlowMatchedCollector;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'fingerprinter-dir-'));
  flows = join(work, 'flows');
  await mkdir(flows);
  await storage.ensureBucket(bucket);
  bus = await RabbitBus.open();
  collector = await bus.collectFlowMatched(bucket);
  fingerprinter = await startFingerprinter(flows, {
    queue: bus.queue('fingerprinter.dir', [100]),
    exchanges: bus.exchanges,
    retryDelaysMs: [100],
    maxAttempts: 1000,
    reloadDebounceMs: 50,
    rescanMs: 200,
  });
});

afterAll(async () => {
  await fingerprinter.close();
  await bus.close();
  await removeBucketAndObjects(storage, bucket);
  await rm(work, { recursive: true, force: true });
});

describe('fingerprinter: flow directory unreadable', () => {
  it('is not ready and retries receipts (never matches them against no flow) until the directory is back', async () => {
    await rm(flows, { recursive: true });
    await waitFor(
      async () => (await readyz(fingerprinter.port)).statusCode === 503,
      '/readyz to report the missing directory',
    );
    const { body } = await readyz(fingerprinter.port);
    expect(body.checks.flows).toMatchObject({
      ok: false,
      error: expect.stringMatching(/no such file/) as string,
    });

    const index = { receiptId: randomUUID(), instances: [fixtureInstance('ct.dcm', { Modality: 'CT' })] };
    await bus.publishStudyReceived(await putReceipt(storage, bucket, index));
    await waitFor(
      () =>
        fingerprinter.logs.some(
          (line) => line.correlationId === index.receiptId && line.msg === 'handler failed; retrying later',
        ),
      'the receipt to be retried',
    );

    await mkdir(flows);
    await writeFile(join(flows, 'ct.yaml'), 'triggers:\n  - Modality: ^CT$\n');
    const [run] = await collector.until(
      () => collector.of(index.receiptId).length > 0,
      'the retried receipt to be matched',
    );
    expect(run?.body).toMatchObject({ flowFile: 'ct.yaml', members: ['ct.dcm'] });
    expect((await readyz(fingerprinter.port)).statusCode).toBe(200);
  });
});

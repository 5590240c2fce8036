import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeBucketAndObjects, uniqueBucketName } from '@dicomflow/storage/testing';
import {
  generateCtSeries,
  newUid,
  SPACES_THEN_X,
  waitFor,
  WORDS_THEN_ENDS,
  withLongText,
} from '@dicomflow/test-helpers';
import { testStorage } from './testing/environment.js';
import { startFingerprinter, type RunningFingerprinter } from './testing/fingerprinter-harness.js';
import { RabbitBus, type FlowMatchedCollector } from './testing/rabbit-bus.js';
import { indexOfFiles, putReceipt } from './testing/receipts.js';

/*
 * A receipt whose instances hold values of 1 MiB (the index keeps their first 64 KiB, as storescp writes
 * it) is matched like any other, and matching sees what the index holds: a pattern on the part that was
 * cut off does not match. No timing is asserted: a quadratic step would end this test on its timeout.
 */

const RETRY_DELAYS_MS = [200];
const storage = testStorage();
const bucket = uniqueBucketName('fp-long');
let work: string;
let bus: RabbitBus;
let fingerprinter: RunningFingerprinter;
let collector: FlowMatchedCollector;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'fingerprinter-long-'));
  const flows = join(work, 'flows');
  await mkdir(flows);
  const flow = (name: string, ...triggers: string[]): string =>
    [`name: ${name}`, 'triggers:', ...triggers].join('\n');
  await writeFile(
    join(flows, 'indexed-part.yaml'),
    flow(
      'indexed part',
      '  - Modality: ^OT$',
      '    SeriesDescription: ["^a a a", "(a+ )+a"]',
      '  - TextValue: ^$',
    ),
  );
  await writeFile(join(flows, 'cut-part.yaml'), flow('cut part', '  - SeriesDescription: ENDS$'));
  await storage.ensureBucket(bucket);
  bus = await RabbitBus.open();
  const queue = bus.queue('fingerprinter.long', RETRY_DELAYS_MS);
  collector = await bus.collectFlowMatched(bucket);
  fingerprinter = await startFingerprinter(flows, {
    queue,
    exchanges: bus.exchanges,
    retryDelaysMs: RETRY_DELAYS_MS,
    maxAttempts: 2,
  });
});

afterAll(async () => {
  await fingerprinter.close();
  await bus.close();
  await removeBucketAndObjects(storage, bucket);
  await rm(work, { recursive: true, force: true });
});

describe('fingerprinter and values of 1 MiB', () => {
  it('matches on what the index holds of them', async () => {
    const study = newUid();
    const [a, b] = await generateCtSeries(join(work, 'src'), 2, {
      studyInstanceUid: study,
      modality: 'OT',
      rows: 16,
      columns: 16,
    });
    if (a === undefined || b === undefined) throw new Error('no fixture');
    const spaces = join(work, 'ut-spaces.dcm');
    const words = join(work, 'lo-words.dcm');
    await withLongText(a, spaces, '(0040,a160)', SPACES_THEN_X);
    await withLongText(b, words, '(0008,103e)', WORDS_THEN_ENDS, { implicit: true });

    const index = await indexOfFiles([spaces, words]);
    // The index holds the first 64 KiB of each long value, as storescp writes it (both use the same reader).
    const longValues = index.instances.flatMap((i) =>
      Object.values(i.elements).filter((e) => (e as { TruncatedFrom?: number }).TruncatedFrom !== undefined),
    );
    expect(longValues).toEqual([
      { vr: 'UT', Value: [''], TruncatedFrom: SPACES_THEN_X.length },
      { vr: 'LO', Value: ['a '.repeat(32 * 1024).trim()], TruncatedFrom: WORDS_THEN_ENDS.length },
    ]);
    const received = await putReceipt(storage, bucket, index);
    await bus.publishStudyReceived(received);

    const matched = await collector.until(
      () => collector.of(index.receiptId).length >= 1,
      'flow.matched for the receipt with long values',
    );
    expect(matched.filter((m) => m.body.receiptId === index.receiptId).map((m) => m.body.flowFile)).toEqual([
      'indexed-part.yaml',
    ]);
    const [run] = collector.of(index.receiptId);
    expect(run?.body.members.slice().sort()).toEqual(index.instances.map((i) => i.member).sort());
    // The flow that looks at the cut-off part did not match: the handler logs its runs once all are published.
    const handled = (): Record<string, unknown> | undefined =>
      fingerprinter.logs.find(
        (l) => l.receiptId === index.receiptId && l.msg === 'receipt matched; runs published',
      );
    await waitFor(() => handled() !== undefined, 'the receipt to be handled');
    const runs = handled()?.runs as Array<{ flowFile: string }> | undefined;
    expect(runs?.map((r) => r.flowFile)).toEqual(['indexed-part.yaml']);
  });
});

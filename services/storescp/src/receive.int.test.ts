import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetBytes, datasetOffset, inspectPart10Buffer } from '@dicomflow/dicom';
import {
  TRANSFER_SYNTAX_UIDS,
  convertTransferSyntax,
  echoscu,
  generateCtSeries,
  newUid,
  storescu,
  type TransferSyntaxName,
} from '@dicomflow/test-helpers';
import { readReceipt, startReceiver, type Receiver } from './testing/receiver-harness.js';

let work: string;
let receiver: Receiver;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-receive-'));
  receiver = await startReceiver();
});

afterAll(async () => {
  await receiver.close();
  await rm(work, { recursive: true, force: true });
});

/** The dataset bytes of a Part-10 file (what travelled over the network). */
function datasetOf(file: Buffer): Buffer {
  return file.subarray(datasetOffset(file));
}

describe('storescp receiving from dcmtk storescu', () => {
  it('answers C-ECHO', async () => {
    const result = await echoscu({ port: receiver.port, calledAe: 'STORESCP' });
    expect(result.code).toBe(0);
  });

  it('stores a 200-instance CT series byte-exact as one receipt and publishes it once', async () => {
    const dir = join(work, 'ct200');
    const studyInstanceUid = newUid();
    const seriesInstanceUid = newUid();
    const files = await generateCtSeries(dir, 200, { studyInstanceUid, seriesInstanceUid });
    const before = receiver.receipts.messages.length;
    const sent = await storescu({ port: receiver.port, calledAe: 'STORESCP', files });
    expect(sent.code).toBe(0);

    const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
    expect(message).toBeDefined();
    if (!message) return;
    expect(message).toMatchObject({
      grouping: 'association',
      calledAeTitle: 'STORESCP',
      instanceCount: 200,
      studies: [{ studyInstanceUid, series: [{ seriesInstanceUid, modality: 'CT', instanceCount: 200 }] }],
    });
    const { index, members } = await readReceipt(receiver.storage, message);
    expect(index.receiptId).toBe(message.receiptId);
    expect(index.instances).toHaveLength(200);
    expect(members.size).toBe(200);
    for (const path of files) {
      const original = await readFile(path);
      const info = inspectPart10Buffer(original, { validate: true });
      const entry = index.instances.find((i) => i.sopInstanceUid === info.sopInstanceUid);
      expect(entry, basename(path)).toBeDefined();
      const stored = members.get(entry?.member ?? '');
      expect(stored).toBeDefined();
      expect(datasetOf(stored ?? Buffer.alloc(0)).equals(datasetOf(original))).toBe(true);
      expect(entry?.elements['00100010']).toBeDefined();
    }
    // Published exactly once, and the spool copy is gone.
    await expect(receiver.receipts.waitFor(before + 2, 500)).rejects.toThrow();
    expect(await readdir(join(receiver.spoolDir, 'groups'))).toEqual([]);
  });

  it('keeps several studies sent in one association together in one receipt', async () => {
    const a = await generateCtSeries(join(work, 'multi-a'), 3, { studyInstanceUid: newUid() });
    const b = await generateCtSeries(join(work, 'multi-b'), 2, {
      studyInstanceUid: newUid(),
      modality: 'MR',
    });
    const before = receiver.receipts.messages.length;
    expect((await storescu({ port: receiver.port, calledAe: 'STORESCP', files: [...a, ...b] })).code).toBe(0);
    const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
    expect(message?.instanceCount).toBe(5);
    expect(message?.studies.map((s) => s.series[0]?.instanceCount).sort()).toEqual([2, 3]);
  });

  const syntaxes = Object.keys(TRANSFER_SYNTAX_UIDS) as TransferSyntaxName[];
  it.each(syntaxes)('keeps the %s transfer syntax and the dataset bytes as sent', async (ts) => {
    const [source] = await generateCtSeries(join(work, `ts-src-${ts}`), 1, { studyInstanceUid: newUid() });
    if (!source) throw new Error('no fixture');
    const file = join(work, `ts-${ts}.dcm`);
    await convertTransferSyntax(source, file, ts);
    const before = receiver.receipts.messages.length;
    const sent = await storescu({ port: receiver.port, calledAe: 'STORESCP', files: [file] });
    expect(sent.code, sent.stderr).toBe(0);
    const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
    if (!message) throw new Error('no receipt');
    const { index, members } = await readReceipt(receiver.storage, message);
    expect(index.instances[0]?.transferSyntaxUid).toBe(TRANSFER_SYNTAX_UIDS[ts]);
    const stored = members.get(index.instances[0]?.member ?? '') ?? Buffer.alloc(0);
    // A deflating sender may compress the same dataset differently each time: compare what was deflated.
    const uid = TRANSFER_SYNTAX_UIDS[ts];
    expect(datasetBytes(stored, uid).equals(datasetBytes(await readFile(file), uid))).toBe(true);
  });
});

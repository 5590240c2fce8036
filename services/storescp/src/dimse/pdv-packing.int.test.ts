import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetOffset } from '@dicomflow/dicom';
import { generateCtSeries, newUid, readFileMeta } from '@dicomflow/test-helpers';
import { readReceipt, startReceiver, type Receiver } from '../testing/receiver-harness.js';
import { packingStoreScu, type Packing } from './testing/packing-scu.js';

let work: string;
let receiver: Receiver;
let files: string[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-packing-'));
  receiver = await startReceiver({ MAX_PDU: '0' });
  // Small images keep the byte-at-a-time case quick; three instances cross every instance boundary.
  files = await generateCtSeries(join(work, 'series'), 3, {
    studyInstanceUid: newUid(),
    rows: 64,
    columns: 64,
  });
});

afterAll(async () => {
  await receiver.close();
  await rm(work, { recursive: true, force: true });
});

const packings: Record<string, Packing> = {
  'one dataset PDV per PDU': { fragment: 16_000, pdvsPerPdu: 1, commandWithData: false, writeSize: 0 },
  'several dataset PDVs per PDU': { fragment: 1_000, pdvsPerPdu: 3, commandWithData: false, writeSize: 0 },
  'command and first data in one PDU': {
    fragment: 2_000,
    pdvsPerPdu: 2,
    commandWithData: true,
    writeSize: 0,
  },
  'whole dataset with its command in one PDU': {
    fragment: 1 << 20,
    pdvsPerPdu: 1,
    commandWithData: true,
    writeSize: 0,
  },
  'PDUs cut into odd socket writes': {
    fragment: 5_000,
    pdvsPerPdu: 2,
    commandWithData: false,
    writeSize: 997,
  },
  'one-byte socket writes, tiny fragments': {
    fragment: 7,
    pdvsPerPdu: 5,
    commandWithData: true,
    writeSize: 1,
  },
};

describe('storescp receiving datasets however the PDVs are packed', () => {
  for (const [name, packing] of Object.entries(packings)) {
    it(`stores byte-exact datasets: ${name}`, async () => {
      const before = receiver.receipts.messages.length;
      const statuses = await packingStoreScu(receiver.port, files, packing);
      expect(statuses).toEqual([0, 0, 0]);
      const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
      if (!message) throw new Error('no receipt');
      const { index, members } = await readReceipt(receiver.storage, message);
      expect(index.instances).toHaveLength(3);
      for (const file of files) {
        const meta = await readFileMeta(file);
        const entry = index.instances.find((i) => i.sopInstanceUid === meta.sopInstanceUid);
        const member = entry && members.get(entry.member);
        if (!member) throw new Error(`instance ${meta.sopInstanceUid} missing from the receipt`);
        const sent = (await readFile(file)).subarray(meta.datasetOffset);
        expect(member.subarray(datasetOffset(member)).equals(sent)).toBe(true);
      }
    });
  }
});

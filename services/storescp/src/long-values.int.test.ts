import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetOffset, inspectPart10Buffer, type DicomJsonElement } from '@dicomflow/dicom';
import {
  echoscu,
  generateCtSeries,
  newUid,
  SPACES_THEN_X,
  storescu,
  WORDS_THEN_ENDS,
  withLongText,
} from '@dicomflow/test-helpers';
import { readReceipt, startReceiver, type Receiver } from './testing/receiver-harness.js';

/*
 * One instance must not stall the receiver: values of 1 MiB that the old end-trim took minutes on are
 * stored whole, indexed up to INDEX_MAX_VALUE_BYTES, while another association is served. No timing is
 * asserted: with a quadratic step, this test would end on its timeout.
 */

const MIB = 1024 * 1024;
let work: string;
let receiver: Receiver;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-long-values-'));
  receiver = await startReceiver();
});

afterAll(async () => {
  await receiver.close();
  await rm(work, { recursive: true, force: true });
});

describe('storescp and values of 1 MiB', () => {
  it('stores a 1 MiB UT of spaces and a 1 MiB LO with internal spaces while a C-ECHO is answered', async () => {
    const [source] = await generateCtSeries(join(work, 'source'), 1, {
      studyInstanceUid: newUid(),
      rows: 16,
      columns: 16,
    });
    if (source === undefined) throw new Error('no fixture');
    const spaces = join(work, 'ut-spaces.dcm');
    const words = join(work, 'lo-words.dcm');
    await withLongText(source, spaces, '(0040,a160)', SPACES_THEN_X);
    // A fresh SOP instance UID for the second file, so the two are two instances of one receipt.
    const second = join(work, 'second.dcm');
    await generateCtSeries(join(work, 'second'), 1, { rows: 16, columns: 16 }).then(async ([file]) => {
      if (file === undefined) throw new Error('no fixture');
      await withLongText(file, second, '(0008,103e)', WORDS_THEN_ENDS, { implicit: true });
    });
    await withLongText(second, words, '(0010,4000)', SPACES_THEN_X, { implicit: true });

    const before = receiver.receipts.messages.length;
    const storing = storescu({ port: receiver.port, calledAe: 'STORESCP', files: [spaces, words] });
    const echo = await echoscu({ port: receiver.port, calledAe: 'STORESCP' });
    const sent = await storing;
    expect(echo.code).toBe(0);
    expect(sent.code).toBe(0);

    const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
    if (!message) throw new Error('no receipt');
    expect(message.instanceCount).toBe(2);
    const { index, members } = await readReceipt(receiver.storage, message);
    for (const path of [spaces, words]) {
      const original = await readFile(path);
      const uid = inspectPart10Buffer(original, { validate: true }).sopInstanceUid;
      const entry = index.instances.find((instance) => instance.sopInstanceUid === uid);
      const stored = members.get(entry?.member ?? '') ?? Buffer.alloc(0);
      // Stored whole, byte for byte.
      expect(stored.subarray(datasetOffset(stored)).equals(original.subarray(datasetOffset(original)))).toBe(
        true,
      );
    }
    // Indexed up to the bound (64 KiB by default), marked with the value's full length.
    const text = index.instances.flatMap((i) =>
      ['0040A160', '0008103E', '00104000'].map((tag) => i.elements[tag] as DicomJsonElement | undefined),
    );
    expect(text).toContainEqual({ vr: 'UT', Value: [''], TruncatedFrom: MIB });
    expect(text).toContainEqual({ vr: 'LT', Value: [''], TruncatedFrom: MIB });
    const description = text.find((element) => element?.vr === 'LO' && element.TruncatedFrom !== undefined);
    expect(description?.TruncatedFrom).toBe(WORDS_THEN_ENDS.length);
    expect(description?.Value?.[0]).toBe('a '.repeat(32 * 1024).trim());
  });
});

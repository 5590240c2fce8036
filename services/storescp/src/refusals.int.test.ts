import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  echoscu,
  generateCtSeries,
  newUid,
  rawStoreScu,
  readFileMeta,
  storescu,
  truncatedCopy,
  withMissingTag,
  withSopClass,
} from '@dicomflow/test-helpers';
import { buildPart10Prefix } from '@dicomflow/dicom';
import { readReceipt, startReceiver, type Receiver } from './testing/receiver-harness.js';

const PRIVATE_SOP_CLASS = '1.2.826.0.1.3680043.9.9999.1';
let work: string;
let receiver: Receiver;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-refusals-'));
  receiver = await startReceiver({ DENIED_CALLING_AE_TITLES: 'BLOCKED' });
});

afterAll(async () => {
  await receiver.close();
  await rm(work, { recursive: true, force: true });
});

/** storescu prints one response per instance; count them by status text. */
function responses(output: string): { success: number; failed: number } {
  return {
    success: (output.match(/Received Store Response \(Success\)/g) ?? []).length,
    failed: (output.match(/Received Store Response \((Error|Failure|Refused)/gi) ?? []).length,
  };
}

async function sendAndCollect(files: string[], calledAe = 'STORESCP') {
  const before = receiver.receipts.messages.length;
  const result = await storescu({ port: receiver.port, calledAe, files, extraArgs: ['-v'] });
  return { result, before, output: result.stdout + result.stderr };
}

describe('storescp refusing bad input', () => {
  for (const keyword of ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'] as const) {
    it(`answers a failure for an instance without ${keyword} and stores the rest of the association`, async () => {
      const [good1, source, good2] = await generateCtSeries(join(work, `missing-${keyword}`), 3, {
        studyInstanceUid: newUid(),
      });
      if (!good1 || !source || !good2) throw new Error('no fixture');
      const bad = join(work, `missing-${keyword}.dcm`);
      await withMissingTag(source, bad, keyword);
      const { before, output } = await sendAndCollect([good1, bad, good2]);
      expect(responses(output)).toEqual({ success: 2, failed: 1 });
      expect(output).toMatch(/DataSetDoesNotMatchSOPClass/);
      const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
      expect(message?.instanceCount).toBe(2);
    });
  }

  // storescu will not send a broken file, so these go through a raw C-STORE sender that sends the bytes as they are.
  it('answers 0xC000 for a truncated dataset, stores the next instance, and never publishes the broken one', async () => {
    const [good, source] = await generateCtSeries(join(work, 'truncated'), 2, { studyInstanceUid: newUid() });
    if (!good || !source) throw new Error('no fixture');
    const bad = join(work, 'truncated.dcm');
    await truncatedCopy(source, bad, 300_000);
    const before = receiver.receipts.messages.length;
    const result = await rawStoreScu({ port: receiver.port, calledAe: 'STORESCP', files: [bad, good] });
    expect(result).toEqual({ associated: true, statuses: [0xc000, 0] });
    const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
    if (!message) throw new Error('no receipt');
    const { index } = await readReceipt(receiver.storage, message);
    expect(index.instances.map((i) => i.sopInstanceUid)).toEqual([(await readFileMeta(good)).sopInstanceUid]);
  });

  it('answers 0xA700 for an instance over MAX_INSTANCE_BYTES, keeps the association, stores the others', async () => {
    const small = await startReceiver({ MAX_INSTANCE_BYTES: String(100 * 1024) });
    try {
      const [tiny1, big, tiny2] = await Promise.all([
        generateCtSeries(join(work, 'limit-a'), 1, { rows: 64, columns: 64 }),
        generateCtSeries(join(work, 'limit-big'), 1, { rows: 512, columns: 512 }),
        generateCtSeries(join(work, 'limit-b'), 1, { rows: 64, columns: 64 }),
      ]).then((series) => series.map((files) => files[0] ?? ''));
      const result = await rawStoreScu({
        port: small.port,
        calledAe: 'STORESCP',
        files: [tiny1 ?? '', big ?? '', tiny2 ?? ''],
      });
      expect(result).toEqual({ associated: true, statuses: [0, 0xa700, 0] });
      // One association, one receipt: the two small instances, not the big one.
      const [message] = await small.receipts.waitFor(1);
      if (!message) throw new Error('no receipt');
      const { index } = await readReceipt(small.storage, message);
      expect(index.instances.map((i) => i.sopInstanceUid).sort()).toEqual(
        [
          (await readFileMeta(tiny1 ?? '')).sopInstanceUid,
          (await readFileMeta(tiny2 ?? '')).sopInstanceUid,
        ].sort(),
      );
    } finally {
      await small.close();
    }
  });

  it('answers 0xC000 for dataset bytes that are not DICOM', async () => {
    const [good] = await generateCtSeries(join(work, 'junk-src'), 1, { studyInstanceUid: newUid() });
    if (!good) throw new Error('no fixture');
    const meta = await readFileMeta(good);
    const junk = join(work, 'junk.dcm');
    const prefix = buildPart10Prefix({
      sopClassUid: meta.sopClassUid,
      sopInstanceUid: newUid(),
      transferSyntaxUid: '1.2.840.10008.1.2.1',
    });
    await writeFile(
      junk,
      Buffer.concat([prefix, Buffer.from('this is not a DICOM dataset at all, just text. '.repeat(40))]),
    );
    const before = receiver.receipts.messages.length;
    const result = await rawStoreScu({ port: receiver.port, calledAe: 'STORESCP', files: [junk] });
    expect(result).toEqual({ associated: true, statuses: [0xc000] });
    await expect(receiver.receipts.waitFor(before + 1, 1500)).rejects.toThrow();
  });

  it('accepts an unknown SOP class by default', async () => {
    const [source] = await generateCtSeries(join(work, 'private-src'), 1, { studyInstanceUid: newUid() });
    if (!source) throw new Error('no fixture');
    const file = join(work, 'private.dcm');
    await withSopClass(source, file, PRIVATE_SOP_CLASS);
    const { before, output } = await sendAndCollect([file]);
    expect(responses(output)).toEqual({ success: 1, failed: 0 });
    const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
    if (!message) throw new Error('no receipt');
    const { index } = await readReceipt(receiver.storage, message);
    expect(index.instances[0]?.sopClassUid).toBe(PRIVATE_SOP_CLASS);
  });

  it('refuses the presentation context of an unknown SOP class when configured to', async () => {
    const strict = await startReceiver({ ACCEPT_UNKNOWN_SOP_CLASSES: 'false' });
    try {
      const [source] = await generateCtSeries(join(work, 'strict-src'), 1, { studyInstanceUid: newUid() });
      if (!source) throw new Error('no fixture');
      const file = join(work, 'strict-private.dcm');
      await withSopClass(source, file, PRIVATE_SOP_CLASS);
      const result = await storescu({
        port: strict.port,
        calledAe: 'STORESCP',
        files: [file],
        extraArgs: ['-v'],
      });
      const output = result.stdout + result.stderr;
      expect(output).toMatch(
        /abstract syntax not supported|no presentation context|No acceptable presentation contexts/i,
      );
      expect(responses(output).success).toBe(0);
      // An association that stored nothing publishes nothing.
      await expect(strict.receipts.waitFor(1, 1500)).rejects.toThrow();
    } finally {
      await strict.close();
    }
  });

  it('rejects a denied calling AE title with A-ASSOCIATE-RJ and a wrong called AE title too', async () => {
    const denied = await echoscu({ port: receiver.port, calledAe: 'STORESCP', callingAe: 'BLOCKED' });
    expect(denied.code).not.toBe(0);
    expect(denied.stdout + denied.stderr).toMatch(/Association Rejected|Calling AE Title Not Recognized/i);
    const wrongCalled = await echoscu({ port: receiver.port, calledAe: 'SOMEONE_ELSE' });
    expect(wrongCalled.code).not.toBe(0);
    expect(wrongCalled.stdout + wrongCalled.stderr).toMatch(/Called AE Title Not Recognized/i);
  });

  it('rejects a denied host with A-ASSOCIATE-RJ', async () => {
    const strict = await startReceiver({ DENIED_HOSTS: '127.0.0.0/8' });
    try {
      const result = await echoscu({ port: strict.port, calledAe: 'STORESCP' });
      expect(result.code).not.toBe(0);
      expect(result.stdout + result.stderr).toMatch(/Association Rejected/i);
    } finally {
      await strict.close();
    }
  });

  it('survives bytes that are not DICOM on the port and keeps serving', async () => {
    const received: Buffer[] = [];
    await new Promise<void>((resolve) => {
      const socket = connect(receiver.port, '127.0.0.1', () => {
        socket.end(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(50)));
      });
      // Read: the receiver answers and closes gracefully, which a peer that never reads would not see.
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    // A-ABORT: service provider, unrecognized PDU ('G' is no PDU type).
    expect([...Buffer.concat(received)]).toEqual([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 1]);
    const echo = await echoscu({ port: receiver.port, calledAe: 'STORESCP' });
    expect(echo.code).toBe(0);
  });

  it('rejects a peer whose A-ASSOCIATE-RQ header announces gigabytes, without buffering them, and keeps serving', async () => {
    const received: Buffer[] = [];
    await new Promise<void>((resolve) => {
      const socket = connect(receiver.port, '127.0.0.1', () => {
        // An A-ASSOCIATE-RQ header claiming 4 GiB, then data that never completes it.
        const header = Buffer.from([0x01, 0x00, 0xff, 0xff, 0xff, 0xf0]);
        socket.write(Buffer.concat([header, Buffer.alloc(256 * 1024)]));
      });
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    // The receiver answered with an A-ASSOCIATE-RJ (type 3: permanent, service provider, local limit
    // exceeded) and closed the connection.
    expect([...Buffer.concat(received)]).toEqual([0x03, 0, 0, 0, 0, 4, 0, 1, 3, 2]);
    const echo = await echoscu({ port: receiver.port, calledAe: 'STORESCP' });
    expect(echo.code).toBe(0);
  });
});

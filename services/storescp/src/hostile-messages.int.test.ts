import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetOffset } from '@dicomflow/dicom';
import type { StudyReceived } from '@dicomflow/messages';
import { echoscu, generateCtSeries, newUid, readFileMeta, storescu } from '@dicomflow/test-helpers';
import { packingStoreScu } from './dimse/testing/packing-scu.js';
import {
  associateRq,
  COMMAND_LAST,
  COMMAND_MORE,
  commandSet,
  CT_IMAGE,
  DATA_LAST,
  DATA_MORE,
  echoCommand,
  element,
  EXPLICIT_LE,
  IMPLICIT_LE,
  pData,
  pdv,
  presentationContext,
  storeCommand,
  ui,
  us,
  VERIFICATION,
} from './dimse/testing/raw-pdus.js';
import { RawPeer } from './dimse/testing/raw-peer.js';
import { readReceipt, startReceiver, type Receiver } from './testing/receiver-harness.js';

/*
 * DIMSE messages the receiver does not serve or cannot read: each is answered with a failure status
 * (or the association aborted) without the library buffering or dcmjs parsing peer bytes, and the
 * receiver goes on serving. Inputs are sized so that the old super-linear steps would take minutes;
 * no timing is asserted, the test timeout is the bound.
 */

const ECHO_RSP = 0x8030;
let work: string;
let receiver: Receiver;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-hostile-messages-'));
  receiver = await startReceiver();
});

afterAll(async () => {
  await receiver.close();
  await rm(work, { recursive: true, force: true });
});

/** A peer associated with a verification context (1) and a CT context (3, explicit VR little endian). */
async function associated(): Promise<RawPeer> {
  const peer = await RawPeer.connect(receiver.port);
  await peer.send(
    associateRq([
      presentationContext(1, VERIFICATION, [IMPLICIT_LE]),
      presentationContext(3, CT_IMAGE, [EXPLICIT_LE]),
    ]),
  );
  const accept = await peer.next();
  if (accept.type !== 0x02) throw new Error(`association not accepted (PDU type ${accept.type})`);
  return peer;
}

/** PDVs in P-DATA-TF PDUs of at most `perPdu` PDVs each. */
function inPdus(pdvs: Buffer[], perPdu: number): Buffer[] {
  const pdus: Buffer[] = [];
  for (let at = 0; at < pdvs.length; at += perPdu) pdus.push(pData(pdvs.slice(at, at + perPdu)));
  return pdus;
}

/** The receipt holding `studyInstanceUid` (receipts of earlier tests may still be arriving). */
async function receiptOf(studyInstanceUid: string): Promise<StudyReceived> {
  for (let count = 1; ; count++) {
    const messages = await receiver.receipts.waitFor(count);
    const found = messages.find((m) => m.studies.some((s) => s.studyInstanceUid === studyInstanceUid));
    if (found) return found;
  }
}

async function expectEcho(peer: RawPeer, messageId: number): Promise<void> {
  await peer.send(pData([pdv(1, COMMAND_LAST, echoCommand(messageId))]));
  expect(await peer.nextCommand()).toMatchObject({ commandField: ECHO_RSP, status: 0 });
}

/**
 * A dataset (explicit VR LE) of `depth` nested SQ > item levels around one OB value of `size` bytes:
 * dcmjs copied the inner bytes once per level.
 */
function nestedSequences(depth: number, size: number): Buffer {
  const ob = Buffer.from([0x09, 0, 0x10, 0x10, 0x4f, 0x42, 0, 0, 0, 0, 0, 0]);
  ob.writeUInt32LE(size, 8);
  let inner = Buffer.concat([ob, Buffer.alloc(size, 0x41)]);
  for (let i = 0; i < depth; i++) {
    const item = Buffer.alloc(8);
    item.writeUInt16LE(0xfffe, 0);
    item.writeUInt16LE(0xe000, 2);
    item.writeUInt32LE(inner.length, 4);
    const sq = Buffer.alloc(12);
    sq.writeUInt16LE(0x0040, 0);
    sq.writeUInt16LE(0xa730, 2);
    sq.write('SQ', 4, 'latin1');
    sq.writeUInt32LE(inner.length + 8, 8);
    inner = Buffer.concat([sq, item, inner]);
  }
  return inner;
}

describe('storescp and hostile DIMSE messages', () => {
  it('aborts a command set sent as 200k one-byte fragments (past 64 KiB) and keeps serving', async () => {
    const peer = await associated();
    const fragments = Array.from({ length: 200_000 }, () => pdv(1, COMMAND_MORE, Buffer.from([0])));
    for (const bytes of inPdus(fragments, 100_000)) await peer.send(bytes);
    expect((await peer.next()).type).toBe(0x07);
    await peer.closedByReceiver();
    expect((await echoscu({ port: receiver.port, calledAe: 'STORESCP' })).code).toBe(0);
  });

  it('answers a C-ECHO whose command comes in 200k fragments (the library: 20 s per 100k)', async () => {
    const peer = await associated();
    const command = echoCommand(5);
    const fragments = Array.from({ length: 200_000 - command.length }, () =>
      pdv(1, COMMAND_MORE, Buffer.alloc(0)),
    );
    for (let i = 0; i < command.length; i++)
      fragments.push(
        pdv(1, i === command.length - 1 ? COMMAND_LAST : COMMAND_MORE, command.subarray(i, i + 1)),
      );
    for (const bytes of inPdus(fragments, 100_000)) await peer.send(bytes);
    expect(await peer.nextCommand()).toMatchObject({ commandField: ECHO_RSP, status: 0 });
    peer.destroy();
  });

  it('answers 0xC000 to a C-ECHO whose command set holds a dataset element of 60k spaces, and aborts one past 64 KiB', async () => {
    const withText = (spaces: number): Buffer =>
      commandSet([
        element(0, 0x0002, ui(VERIFICATION)),
        element(0, 0x0100, us(0x0030)),
        element(0, 0x0110, us(9)),
        element(0, 0x0800, us(0x0101)),
        element(0x0010, 0x4000, Buffer.from(`a${' '.repeat(spaces)}a`, 'latin1')),
      ]);
    const peer = await associated();
    await peer.send(pData([pdv(1, COMMAND_LAST, withText(60_000))]));
    expect(await peer.nextCommand()).toMatchObject({ commandField: ECHO_RSP, status: 0xc000 });
    await expectEcho(peer, 10); // the association goes on
    peer.destroy();
    // 160k spaces: dcmjs took 21.6 s to trim it; now it is longer than a command set may be.
    const second = await associated();
    await second.send(pData([pdv(1, COMMAND_LAST, withText(160_000))]));
    expect((await second.next()).type).toBe(0x07);
    await second.closedByReceiver();
  });

  it('answers 0x0211 to a C-FIND with a 2000-deep nested dataset without parsing it, then a C-ECHO', async () => {
    const peer = await associated();
    const find = commandSet([
      element(0, 0x0002, ui(VERIFICATION)),
      element(0, 0x0100, us(0x0020)),
      element(0, 0x0110, us(1)),
      element(0, 0x0700, us(0)),
      element(0, 0x0800, us(0)),
    ]);
    const dataset = nestedSequences(2000, 200_000);
    const pieces = [];
    for (let at = 0; at < dataset.length; at += 16_000)
      pieces.push(
        pdv(1, at + 16_000 >= dataset.length ? DATA_LAST : DATA_MORE, dataset.subarray(at, at + 16_000)),
      );
    await peer.send(pData([pdv(1, COMMAND_LAST, find)]));
    for (const bytes of inPdus(pieces, 8)) await peer.send(bytes);
    expect(await peer.nextCommand()).toMatchObject({ commandField: 0x8020, status: 0x0211 });
    await expectEcho(peer, 2);
    peer.destroy();
  });

  it('answers 0xA900 to a C-STORE whose SOP Instance UID is longer than 64 characters, and stores the next', async () => {
    const longUid = `1.2.826.0.1.3680043.8.498.${'1'.repeat(60)}`;
    const peer = await associated();
    await peer.send(
      pData([pdv(3, COMMAND_LAST, storeCommand(1, CT_IMAGE, longUid)), pdv(3, DATA_LAST, Buffer.alloc(64))]),
    );
    expect(await peer.nextCommand()).toEqual({
      commandField: 0x8001,
      status: 0xa900,
      errorComment: 'SOP Instance UID longer than 64 characters',
    });
    peer.destroy();
    const studyInstanceUid = newUid();
    const files = await generateCtSeries(join(work, 'after-long-uid'), 1, { studyInstanceUid });
    expect((await storescu({ port: receiver.port, calledAe: 'STORESCP', files })).code).toBe(0);
    expect((await receiptOf(studyInstanceUid)).instanceCount).toBe(1);
  });

  it('stores byte-exact a dataset sent as 500k one-byte PDVs', async () => {
    const studyInstanceUid = newUid();
    const [file] = await generateCtSeries(join(work, 'one-byte-pdvs'), 1, {
      studyInstanceUid,
      rows: 512,
      columns: 512,
    });
    if (!file) throw new Error('no fixture');
    const statuses = await packingStoreScu(receiver.port, [file], {
      fragment: 1,
      pdvsPerPdu: 100_000,
      commandWithData: false,
      writeSize: 0,
    });
    expect(statuses).toEqual([0]);
    const { index, members } = await readReceipt(receiver.storage, await receiptOf(studyInstanceUid));
    const member = members.get(index.instances[0]?.member ?? '');
    if (!member) throw new Error('instance missing from the receipt');
    const meta = await readFileMeta(file);
    const sent = (await readFile(file)).subarray(meta.datasetOffset);
    expect(sent.length).toBeGreaterThan(500_000);
    expect(member.subarray(datasetOffset(member)).equals(sent)).toBe(true);
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPart10Prefix } from '../part10.js';
import { decodeCStoreRsp, encodeCStoreRq, isStoredStatus, isTransientStatus } from './command.js';
import { metaGroupEnd, NotAnInstanceError, parseInstanceHead, readInstanceFile } from './instance-file.js';
import { decodeAssociateAc, decodePdvs, encodeAssociateRq, pDataHeader, PduReader } from './pdu.js';

/** A command element in implicit VR little endian. */
function element(tag: number, value: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0, 0);
  head.writeUInt16LE(tag, 2);
  head.writeUInt32LE(value.length, 4);
  return Buffer.concat([head, value]);
}
const us = (v: number): Buffer => Buffer.from([v & 0xff, v >> 8]);

describe('C-STORE command sets', () => {
  it('encodes a C-STORE-RQ with even-length UIDs and a correct group length', () => {
    const command = encodeCStoreRq({ messageId: 7, sopClassUid: '1.2.3', sopInstanceUid: '1.2.3.4' });
    expect(command.readUInt32LE(8)).toBe(command.length - 12);
    const text = command.toString('latin1');
    expect(text).toContain('1.2.3\0');
    expect(text).toContain('1.2.3.4\0');
  });

  it('reads status, responded message id and error comment of a C-STORE-RSP', () => {
    const rsp = Buffer.concat([
      element(0x0100, us(0x8001)),
      element(0x0120, us(7)),
      element(0x0900, us(0xa700)),
      element(0x0902, Buffer.from('disk full ')),
    ]);
    expect(decodeCStoreRsp(rsp)).toEqual({
      messageIdBeingRespondedTo: 7,
      status: 0xa700,
      errorComment: 'disk full',
    });
    expect(decodeCStoreRsp(element(0x0100, us(0x8030)))).toBeUndefined();
  });

  it('classifies statuses', () => {
    expect([0x0000, 0xb000, 0xb007, 0x0001].every(isStoredStatus)).toBe(true);
    expect([0xa700, 0xa7ff].every(isTransientStatus)).toBe(true);
    expect(isStoredStatus(0xa900) || isTransientStatus(0xa900)).toBe(false);
    expect(isStoredStatus(0x0122) || isTransientStatus(0x0122)).toBe(false);
  });
});

describe('PDUs', () => {
  it('cuts a byte stream into PDUs however it is split', () => {
    const a = Buffer.concat([pDataHeader(1, 3, true, true), Buffer.from('abc')]);
    const b = Buffer.concat([pDataHeader(3, 2, false, false), Buffer.from('de')]);
    const all = Buffer.concat([a, b]);
    for (let cut = 1; cut < all.length; cut++) {
      const reader = new PduReader();
      const pdus = [...reader.push(all.subarray(0, cut)), ...reader.push(all.subarray(cut))];
      expect(
        pdus.map((p) => decodePdvs(p.body).map((v) => [v.contextId, v.command, v.last, v.value.toString()])),
      ).toEqual([[[1, true, true, 'abc']], [[3, false, false, 'de']]]);
    }
  });

  it('reads accepted and refused contexts and the max PDU from an A-ASSOCIATE-AC', () => {
    // An AC has the RQ's layout: reuse the encoder and turn its context items into result items.
    const rq = encodeAssociateRq({
      callingAeTitle: 'US',
      calledAeTitle: 'THEM',
      contexts: [],
      maxPdu: 16384,
      implementationClassUid: '1.2',
      implementationVersion: 'X',
    });
    const item = (type: number, body: Buffer): Buffer =>
      Buffer.concat([Buffer.from([type, 0, body.length >> 8, body.length & 0xff]), body]);
    const accepted = item(
      0x21,
      Buffer.concat([Buffer.from([1, 0, 0, 0]), item(0x40, Buffer.from('1.2.840.10008.1.2\0'))]),
    );
    const refused = item(0x21, Buffer.concat([Buffer.from([3, 0, 4, 0]), item(0x40, Buffer.alloc(0))]));
    const body = rq.subarray(6);
    const ac = Buffer.concat([body.subarray(0, 68), accepted, refused, body.subarray(68)]);
    const decoded = decodeAssociateAc(ac);
    expect([...decoded.accepted]).toEqual([[1, '1.2.840.10008.1.2']]);
    expect([...decoded.refused]).toEqual([[3, 4]]);
    expect(decoded.peerMaxPdu).toBe(16384);
  });
});

describe('readInstanceFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'store-scu-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the UIDs and where the dataset starts', async () => {
    const prefix = buildPart10Prefix({
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUid: '1.2.3.4.5',
      transferSyntaxUid: '1.2.840.10008.1.2.1',
    });
    const path = join(dir, 'a.dcm');
    await writeFile(path, Buffer.concat([prefix, Buffer.from('DATASET!')]));
    expect(await readInstanceFile(path)).toEqual({
      path,
      size: prefix.length + 8,
      datasetOffset: prefix.length,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUid: '1.2.3.4.5',
      transferSyntaxUid: '1.2.840.10008.1.2.1',
    });
  });

  it('refuses files that are not Part-10', async () => {
    const path = join(dir, 'notes.txt');
    await writeFile(path, 'hello, not DICOM');
    await expect(readInstanceFile(path)).rejects.toBeInstanceOf(NotAnInstanceError);
  });

  it('parses the same from the first bytes already in memory, once they hold the meta group', () => {
    const prefix = buildPart10Prefix({
      sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
      sopInstanceUid: '1.2.3.4.6',
      transferSyntaxUid: '1.2.840.10008.1.2',
    });
    const bytes = Buffer.concat([prefix, Buffer.alloc(100)]);
    expect(metaGroupEnd(bytes.subarray(0, 140))).toBeUndefined();
    expect(metaGroupEnd(bytes)).toBe(prefix.length);
    expect(parseInstanceHead('/x.dcm', 5000, bytes)).toEqual({
      path: '/x.dcm',
      size: 5000,
      datasetOffset: prefix.length,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
      sopInstanceUid: '1.2.3.4.6',
      transferSyntaxUid: '1.2.840.10008.1.2',
    });
    expect(() => parseInstanceHead('/y', 16, Buffer.from('hello, not DICOM'))).toThrow(NotAnInstanceError);
  });
});

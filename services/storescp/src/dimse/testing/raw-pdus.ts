/*
 * Builders for upper-layer PDUs and command sets as bytes, for tests that send a receiver exactly what a
 * hostile or broken peer would (duplicate context IDs, unknown contexts, fragmented commands...).
 */

export const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';
export const VERIFICATION = '1.2.840.10008.1.1';
export const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const EXPLICIT_LE = '1.2.840.10008.1.2.1';

function u16be(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function u32be(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

/** An item or sub-item: type, reserved, 16-bit length, value. */
export function item(type: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 0]), u16be(value.length), value]);
}

/** A PDU: type, reserved, 32-bit length, body. */
export function pdu(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 0]), u32be(body.length), body]);
}

/** A presentation context item of an A-ASSOCIATE-RQ. */
export function presentationContext(id: number, abstractSyntax: string, transferSyntaxes: string[]): Buffer {
  return item(
    0x20,
    Buffer.concat([
      Buffer.from([id, 0, 0, 0]),
      item(0x30, Buffer.from(abstractSyntax, 'latin1')),
      ...transferSyntaxes.map((ts) => item(0x40, Buffer.from(ts, 'latin1'))),
    ]),
  );
}

/** An A-ASSOCIATE-RQ to STORESCP with the given presentation context items and user sub-items. */
export function associateRq(contexts: readonly Buffer[], userItems: readonly Buffer[] = []): Buffer {
  const ae = (title: string): Buffer => Buffer.from(title.padEnd(16, ' '), 'latin1');
  const fixed = Buffer.concat([u16be(1), u16be(0), ae('STORESCP'), ae('RAWPEER'), Buffer.alloc(32)]);
  const user = item(
    0x50,
    Buffer.concat([item(0x51, u32be(16_384)), item(0x52, Buffer.from('1.2.3.4')), ...userItems]),
  );
  return pdu(0x01, Buffer.concat([fixed, item(0x10, Buffer.from(APPLICATION_CONTEXT)), ...contexts, user]));
}

/** A presentation data value: context ID, control header (bit 0 command, bit 1 last), value. */
export function pdv(contextId: number, control: number, value: Buffer): Buffer {
  return Buffer.concat([u32be(value.length + 2), Buffer.from([contextId, control]), value]);
}

/** A P-DATA-TF PDU holding the given PDVs. */
export function pData(pdvs: readonly Buffer[]): Buffer {
  return pdu(0x04, Buffer.concat(pdvs));
}

export const COMMAND_LAST = 0x03;
export const COMMAND_MORE = 0x01;
export const DATA_LAST = 0x02;
export const DATA_MORE = 0x00;

/** An A-RELEASE-RQ PDU. */
export const RELEASE_RQ = pdu(0x05, Buffer.alloc(4));

/** One implicit VR little endian element. */
export function element(group: number, elementNumber: number, value: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(elementNumber, 2);
  header.writeUInt32LE(value.length, 4);
  return Buffer.concat([header, value]);
}

export const us = (v: number): Buffer => Buffer.from([v & 0xff, (v >> 8) & 0xff]);
export const ui = (uid: string): Buffer => Buffer.from(uid.length % 2 ? `${uid}\0` : uid, 'latin1');

/** A command set: (0000,0000) group length first, then `elements` as given. */
export function commandSet(elements: readonly Buffer[]): Buffer {
  const body = Buffer.concat(elements);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length);
  return Buffer.concat([element(0, 0, length), body]);
}

/** A C-ECHO-RQ command set. */
export function echoCommand(messageId: number): Buffer {
  return commandSet([
    element(0, 0x0002, ui(VERIFICATION)),
    element(0, 0x0100, us(0x0030)),
    element(0, 0x0110, us(messageId)),
    element(0, 0x0800, us(0x0101)),
  ]);
}

/** A C-STORE-RQ command set announcing a dataset. */
export function storeCommand(messageId: number, sopClassUid: string, sopInstanceUid: string): Buffer {
  return commandSet([
    element(0, 0x0002, ui(sopClassUid)),
    element(0, 0x0100, us(0x0001)),
    element(0, 0x0110, us(messageId)),
    element(0, 0x0700, us(0)),
    element(0, 0x0800, us(0)),
    element(0, 0x1000, ui(sopInstanceUid)),
  ]);
}

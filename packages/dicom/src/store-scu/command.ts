// DIMSE command sets (PS3.7 section 9.3.1) of C-STORE: always implicit VR little endian, group 0000 only.

const C_STORE_RQ = 0x0001;
const C_STORE_RSP = 0x8001;
const DATASET_PRESENT = 0x0000;

function element(tagElement: number, value: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0x0000, 0);
  head.writeUInt16LE(tagElement, 2);
  head.writeUInt32LE(value.length, 4);
  return Buffer.concat([head, value]);
}

const us = (value: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value);
  return b;
};
const ul = (value: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
};
/** A UID value, padded with one NUL to an even length. */
const ui = (value: string): Buffer => Buffer.from(value.length % 2 === 1 ? `${value}\0` : value, 'latin1');

/** The command set of a C-STORE-RQ (priority medium, dataset present). */
export function encodeCStoreRq(opts: {
  messageId: number;
  sopClassUid: string;
  sopInstanceUid: string;
}): Buffer {
  const body = Buffer.concat([
    element(0x0002, ui(opts.sopClassUid)),
    element(0x0100, us(C_STORE_RQ)),
    element(0x0110, us(opts.messageId)),
    element(0x0700, us(0)),
    element(0x0800, us(DATASET_PRESENT)),
    element(0x1000, ui(opts.sopInstanceUid)),
  ]);
  return Buffer.concat([element(0x0000, ul(body.length)), body]);
}

/** What a C-STORE-RSP says. */
export interface CStoreResponse {
  readonly messageIdBeingRespondedTo: number;
  readonly status: number;
  readonly errorComment?: string;
}

/** Reads a command set; undefined when it is not a C-STORE-RSP. */
export function decodeCStoreRsp(command: Buffer): CStoreResponse | undefined {
  let commandField: number | undefined;
  let respondedTo: number | undefined;
  let status: number | undefined;
  let errorComment: string | undefined;
  for (let at = 0; at + 8 <= command.length;) {
    const tagElement = command.readUInt16LE(at + 2);
    const length = command.readUInt32LE(at + 4);
    const value = command.subarray(at + 8, at + 8 + length);
    if (tagElement === 0x0100 && length === 2) commandField = value.readUInt16LE(0);
    else if (tagElement === 0x0120 && length === 2) respondedTo = value.readUInt16LE(0);
    else if (tagElement === 0x0900 && length === 2) status = value.readUInt16LE(0);
    else if (tagElement === 0x0902) errorComment = value.toString('latin1').replace(/[\0 ]+$/, '');
    at += 8 + length;
  }
  if (commandField !== C_STORE_RSP || respondedTo === undefined || status === undefined) return undefined;
  return { messageIdBeingRespondedTo: respondedTo, status, ...(errorComment ? { errorComment } : {}) };
}

/** Success (0x0000) or warning (0x0001, 0xB000-0xBFFF): the instance is stored. */
export function isStoredStatus(status: number): boolean {
  return status === 0x0000 || status === 0x0001 || (status & 0xf000) === 0xb000;
}

/** Out of resources (0xA7xx): worth sending again later. */
export function isTransientStatus(status: number): boolean {
  return (status & 0xff00) === 0xa700;
}

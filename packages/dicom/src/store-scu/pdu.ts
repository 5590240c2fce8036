// Upper-layer PDUs (PS3.8 section 9.3) that a C-STORE SCU writes and reads. Only what a storage SCU needs:
// A-ASSOCIATE-RQ out, A-ASSOCIATE-AC/RJ in, P-DATA-TF both ways, A-RELEASE and A-ABORT.

export const PduType = {
  AssociateRq: 0x01,
  AssociateAc: 0x02,
  AssociateRj: 0x03,
  PData: 0x04,
  ReleaseRq: 0x05,
  ReleaseRp: 0x06,
  Abort: 0x07,
} as const;

const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';
/** Peer max PDU assumed when the A-ASSOCIATE-AC names none (0 there means "no limit"). */
const UNLIMITED_PDU = 0xffff_ffff;

/** One proposed presentation context: an odd id, an abstract syntax and the transfer syntaxes offered. */
export interface ProposedContext {
  readonly id: number;
  readonly abstractSyntax: string;
  readonly transferSyntaxes: readonly string[];
}

/** What the A-ASSOCIATE-AC answered. */
export interface AssociateAccept {
  /** Accepted context id -> the transfer syntax the acceptor chose. */
  readonly accepted: ReadonlyMap<number, string>;
  /** Refused context id -> result/reason (1 user rejection, 2 no reason, 3 abstract, 4 transfer syntax). */
  readonly refused: ReadonlyMap<number, number>;
  /** Largest P-DATA-TF PDU (body length) the acceptor takes. */
  readonly peerMaxPdu: number;
}

export interface AssociateReject {
  /** 1 rejected permanent, 2 rejected transient. */
  readonly result: number;
  /** 1 service user, 2 service provider (ACSE), 3 service provider (presentation). */
  readonly source: number;
  readonly reason: number;
}

const u16 = (value: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
};
const u32 = (value: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
};
const aeField = (title: string): Buffer => Buffer.from(title.padEnd(16, ' ').slice(0, 16), 'latin1');

function item(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 0]), u16(body.length), body]);
}

/** A whole PDU: type, reserved byte, 32-bit length, body. */
export function pdu(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 0]), u32(body.length), body]);
}

/** A-ASSOCIATE-RQ with the given contexts, our max PDU and implementation identity. */
export function encodeAssociateRq(opts: {
  callingAeTitle: string;
  calledAeTitle: string;
  contexts: readonly ProposedContext[];
  maxPdu: number;
  implementationClassUid: string;
  implementationVersion: string;
}): Buffer {
  const contexts = opts.contexts.map((context) =>
    item(
      0x20,
      Buffer.concat([
        Buffer.from([context.id, 0, 0, 0]),
        item(0x30, Buffer.from(context.abstractSyntax, 'latin1')),
        ...context.transferSyntaxes.map((syntax) => item(0x40, Buffer.from(syntax, 'latin1'))),
      ]),
    ),
  );
  const userInfo = item(
    0x50,
    Buffer.concat([
      item(0x51, u32(opts.maxPdu)),
      item(0x52, Buffer.from(opts.implementationClassUid, 'latin1')),
      item(0x55, Buffer.from(opts.implementationVersion, 'latin1')),
    ]),
  );
  const header = Buffer.concat([
    u16(1),
    u16(0),
    aeField(opts.calledAeTitle),
    aeField(opts.callingAeTitle),
    Buffer.alloc(32),
  ]);
  return pdu(
    PduType.AssociateRq,
    Buffer.concat([header, item(0x10, Buffer.from(APPLICATION_CONTEXT, 'latin1')), ...contexts, userInfo]),
  );
}

const uid = (bytes: Buffer): string => bytes.toString('latin1').replace(/[\0 ]+$/, '');

/** Reads the presentation context results and the peer's max PDU length from an A-ASSOCIATE-AC body. */
export function decodeAssociateAc(body: Buffer): AssociateAccept {
  const accepted = new Map<number, string>();
  const refused = new Map<number, number>();
  let peerMaxPdu = UNLIMITED_PDU;
  for (let at = 68; at + 4 <= body.length;) {
    const type = body.readUInt8(at);
    const length = body.readUInt16BE(at + 2);
    const value = body.subarray(at + 4, at + 4 + length);
    if (type === 0x21 && value.length >= 4) {
      const id = value.readUInt8(0);
      const result = value.readUInt8(2);
      if (result === 0) {
        let syntax = '';
        for (let sub = 4; sub + 4 <= value.length;) {
          const subLength = value.readUInt16BE(sub + 2);
          if (value.readUInt8(sub) === 0x40) syntax = uid(value.subarray(sub + 4, sub + 4 + subLength));
          sub += 4 + subLength;
        }
        accepted.set(id, syntax);
      } else refused.set(id, result);
    } else if (type === 0x50) {
      for (let sub = 0; sub + 4 <= value.length;) {
        const subLength = value.readUInt16BE(sub + 2);
        if (value.readUInt8(sub) === 0x51 && subLength === 4) {
          const max = value.readUInt32BE(sub + 4);
          peerMaxPdu = max === 0 ? UNLIMITED_PDU : max;
        }
        sub += 4 + subLength;
      }
    }
    at += 4 + length;
  }
  return { accepted, refused, peerMaxPdu };
}

/** Result, source and reason of an A-ASSOCIATE-RJ body. */
export function decodeAssociateRj(body: Buffer): AssociateReject {
  return { result: body.readUInt8(1), source: body.readUInt8(2), reason: body.readUInt8(3) };
}

/** A-RELEASE-RQ. */
export function encodeReleaseRq(): Buffer {
  return pdu(PduType.ReleaseRq, Buffer.alloc(4));
}

/** A-ABORT from the service user. */
export function encodeAbort(): Buffer {
  return pdu(PduType.Abort, Buffer.alloc(4));
}

/**
 * Header of a P-DATA-TF PDU holding one PDV of `valueLength` bytes: PDU header, PDV length, context id and
 * the message control header (bit 0: command, bit 1: last fragment). The value bytes follow it.
 */
export function pDataHeader(contextId: number, valueLength: number, command: boolean, last: boolean): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt8(PduType.PData, 0);
  header.writeUInt32BE(valueLength + 6, 2);
  header.writeUInt32BE(valueLength + 2, 6);
  header.writeUInt8(contextId, 10);
  header.writeUInt8((command ? 1 : 0) | (last ? 2 : 0), 11);
  return header;
}

/** One received PDU. */
export interface Pdu {
  readonly type: number;
  readonly body: Buffer;
}

/** Cuts a byte stream into PDUs. Responses to a storage SCU are small, so bodies are copied whole. */
export class PduReader {
  #pending: Buffer[] = [];
  #pendingLength = 0;

  /** Adds received bytes; returns every PDU now complete. */
  push(chunk: Buffer): Pdu[] {
    this.#pending.push(chunk);
    this.#pendingLength += chunk.length;
    const out: Pdu[] = [];
    for (;;) {
      if (this.#pendingLength < 6) break;
      const head = this.#merge();
      const length = head.readUInt32BE(2);
      if (this.#pendingLength < 6 + length) break;
      const all = this.#merge();
      out.push({ type: all.readUInt8(0), body: Buffer.from(all.subarray(6, 6 + length)) });
      const rest = all.subarray(6 + length);
      this.#pending = rest.length > 0 ? [rest] : [];
      this.#pendingLength = rest.length;
    }
    return out;
  }

  #merge(): Buffer {
    if (this.#pending.length > 1) this.#pending = [Buffer.concat(this.#pending)];
    return this.#pending[0] ?? Buffer.alloc(0);
  }
}

/** The PDVs of a P-DATA-TF body. */
export function decodePdvs(
  body: Buffer,
): { contextId: number; command: boolean; last: boolean; value: Buffer }[] {
  const pdvs: { contextId: number; command: boolean; last: boolean; value: Buffer }[] = [];
  for (let at = 0; at + 6 <= body.length;) {
    const length = body.readUInt32BE(at);
    const contextId = body.readUInt8(at + 4);
    const control = body.readUInt8(at + 5);
    pdvs.push({
      contextId,
      command: (control & 1) === 1,
      last: (control & 2) === 2,
      value: body.subarray(at + 6, at + 4 + length),
    });
    at += 4 + length;
  }
  return pdvs;
}

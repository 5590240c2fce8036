import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { readFileMeta } from './part10-meta.js';
import { PduReader, type Pdu } from './raw-pdu.js';

const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';
const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1473.99';
const OUR_MAX_PDU = 65_536;
const DEFAULT_PEER_MAX_PDU = 16_384;

export interface RawStoreScuOptions {
  host?: string;
  port: number;
  callingAe?: string;
  calledAe?: string;
  files: string[];
  timeoutMs?: number;
}

export interface RawStoreScuResult {
  /** False when the peer rejected (or aborted) the association request. */
  readonly associated: boolean;
  /**
   * Per file, in order: the DIMSE status of the C-STORE response (0 = success), or null when the file
   * was not sent (its presentation context was refused) or no response came (association ended).
   */
  readonly statuses: (number | null)[];
}

const u16 = (v: number): Buffer => Buffer.from([(v >> 8) & 0xff, v & 0xff]);
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
const ae = (title: string): Buffer => Buffer.from(title.padEnd(16, ' ').slice(0, 16), 'latin1');

function item(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 0]), u16(body.length), body]);
}

/** An upper-layer PDU: type, reserved byte, 32-bit big-endian length, body. */
export function pdu(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 0]), u32(body.length), body]);
}

/** An A-ASSOCIATE-RQ proposing one presentation context (ids 1, 3, ...) per entry of `contexts`. */
export function associateRq(
  calling: string,
  called: string,
  contexts: readonly { sopClass: string; syntax: string }[],
): Buffer {
  const pcs = contexts.map((c, i) =>
    item(
      0x20,
      Buffer.concat([
        Buffer.from([i * 2 + 1, 0, 0, 0]),
        item(0x30, Buffer.from(c.sopClass)),
        item(0x40, Buffer.from(c.syntax)),
      ]),
    ),
  );
  const userInfo = item(
    0x50,
    Buffer.concat([item(0x51, u32(OUR_MAX_PDU)), item(0x52, Buffer.from(IMPLEMENTATION_CLASS_UID))]),
  );
  const header = Buffer.concat([u16(1), u16(0), ae(called), ae(calling), Buffer.alloc(32)]);
  return pdu(0x01, Buffer.concat([header, item(0x10, Buffer.from(APPLICATION_CONTEXT)), ...pcs, userInfo]));
}

/** Accepted presentation context ids and the peer's max PDU length from an A-ASSOCIATE-AC. */
function parseAssociateAc(body: Buffer): { accepted: Set<number>; peerMaxPdu: number } {
  const accepted = new Set<number>();
  let peerMaxPdu = DEFAULT_PEER_MAX_PDU;
  for (let at = 68; at + 4 <= body.length;) {
    const type = body.readUInt8(at);
    const length = body.readUInt16BE(at + 2);
    const value = body.subarray(at + 4, at + 4 + length);
    if (type === 0x21 && value.readUInt8(2) === 0) accepted.add(value.readUInt8(0));
    if (type === 0x50) {
      for (let sub = 0; sub + 4 <= value.length;) {
        const subLength = value.readUInt16BE(sub + 2);
        if (value.readUInt8(sub) === 0x51)
          peerMaxPdu = value.readUInt32BE(sub + 4) || Number.MAX_SAFE_INTEGER;
        sub += 4 + subLength;
      }
    }
    at += 4 + length;
  }
  return { accepted, peerMaxPdu };
}

function implicitElement(group: number, element: number, value: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(element, 2);
  header.writeUInt32LE(value.length, 4);
  return Buffer.concat([header, value]);
}

function uidValue(uid: string): Buffer {
  return Buffer.from(uid.length % 2 === 0 ? uid : `${uid}\0`, 'latin1');
}

function us(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value);
  return b;
}

/** The command set of a C-STORE-RQ (implicit VR little endian) announcing a dataset. */
export function storeCommand(messageId: number, sopClass: string, sopInstance: string): Buffer {
  const elements = Buffer.concat([
    implicitElement(0x0000, 0x0002, uidValue(sopClass)),
    implicitElement(0x0000, 0x0100, us(0x0001)), // C-STORE-RQ
    implicitElement(0x0000, 0x0110, us(messageId)),
    implicitElement(0x0000, 0x0700, us(0)), // medium priority
    implicitElement(0x0000, 0x0800, us(0x0000)), // a dataset follows
    implicitElement(0x0000, 0x1000, uidValue(sopInstance)),
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(elements.length);
  return Buffer.concat([implicitElement(0x0000, 0x0000, length), elements]);
}

/** (0000,0900) Status from a response command set (implicit VR little endian). */
export function commandStatus(command: Buffer): number | null {
  for (let at = 0; at + 8 <= command.length;) {
    const length = command.readUInt32LE(at + 4);
    if (command.readUInt16LE(at) === 0x0000 && command.readUInt16LE(at + 2) === 0x0900)
      return command.readUInt16LE(at + 8);
    at += 8 + length;
  }
  return null;
}

/**
 * P-DATA-TF PDUs carrying `bytes` (a command or a dataset) for presentation context `contextId`, one PDV
 * each, none longer than `maxPdu` (at most 1 MiB); the last PDV is flagged as such.
 */
export function pDataPdus(contextId: number, bytes: Buffer, isCommand: boolean, maxPdu: number): Buffer[] {
  const pdus: Buffer[] = [];
  const chunk = Math.max(1, Math.min(maxPdu, 1 << 20) - 6);
  for (let at = 0; at < bytes.length || at === 0; at += chunk) {
    const part = bytes.subarray(at, at + chunk);
    const last = at + chunk >= bytes.length;
    const header = Buffer.from([contextId, (isCommand ? 1 : 0) | (last ? 2 : 0)]);
    pdus.push(pdu(0x04, Buffer.concat([u32(part.length + 2), header, part])));
    if (last) break;
  }
  return pdus;
}

function sendPdvs(
  socket: Socket,
  contextId: number,
  bytes: Buffer,
  isCommand: boolean,
  maxPdu: number,
): void {
  for (const bytesOut of pDataPdus(contextId, bytes, isCommand, maxPdu)) socket.write(bytesOut);
}

/**
 * Command bytes of the next complete P-DATA command message (ignores data PDVs, which responses lack), or
 * null when the next PDU is not P-DATA.
 */
export async function readCommand(next: () => Promise<Pdu>): Promise<Buffer | null> {
  const parts: Buffer[] = [];
  for (;;) {
    const received = await next();
    if (received.type !== 0x04) return null;
    for (let at = 0; at + 6 <= received.body.length;) {
      const length = received.body.readUInt32BE(at);
      const control = received.body.readUInt8(at + 5);
      if (control & 1) parts.push(received.body.subarray(at + 6, at + 4 + length));
      if ((control & 3) === 3) return Buffer.concat(parts);
      at += 4 + length;
    }
  }
}

/**
 * A minimal C-STORE SCU that sends each file's dataset bytes exactly as stored after its meta group,
 * without parsing them. dcmtk's storescu re-encodes what it parsed and so cannot put a malformed (e.g.
 * cut-short) dataset on the wire; this can, in one association, e.g. `[truncated, good]`.
 * Proposes one presentation context per (SOP class, transfer syntax) of the files' meta groups.
 */
export async function rawStoreScu(opts: RawStoreScuOptions): Promise<RawStoreScuResult> {
  const metas = await Promise.all(opts.files.map(async (path) => ({ path, ...(await readFileMeta(path)) })));
  const contexts: { sopClass: string; syntax: string }[] = [];
  const contextOf = metas.map((meta) => {
    let index = contexts.findIndex(
      (c) => c.sopClass === meta.sopClassUid && c.syntax === meta.transferSyntaxUid,
    );
    if (index < 0) index = contexts.push({ sopClass: meta.sopClassUid, syntax: meta.transferSyntaxUid }) - 1;
    return index * 2 + 1;
  });
  const socket = connect({ host: opts.host ?? '127.0.0.1', port: opts.port });
  socket.setNoDelay(true);
  const reader = new PduReader(socket, opts.timeoutMs ?? 60_000);
  const statuses: (number | null)[] = opts.files.map(() => null);
  try {
    await reader.connected();
    socket.write(associateRq(opts.callingAe ?? 'RAWSCU', opts.calledAe ?? 'ANY-SCP', contexts));
    const answer = await reader.next();
    if (answer.type !== 0x02) return { associated: false, statuses };
    const { accepted, peerMaxPdu } = parseAssociateAc(answer.body);
    for (const [i, meta] of metas.entries()) {
      const contextId = contextOf[i] ?? 0;
      if (!accepted.has(contextId)) continue;
      const dataset = (await readFile(meta.path)).subarray(meta.datasetOffset);
      sendPdvs(
        socket,
        contextId,
        storeCommand(i + 1, meta.sopClassUid, meta.sopInstanceUid),
        true,
        peerMaxPdu,
      );
      sendPdvs(socket, contextId, dataset, false, peerMaxPdu);
      const command = await readCommand(() => reader.next());
      if (command === null) return { associated: true, statuses };
      statuses[i] = commandStatus(command);
    }
    socket.write(pdu(0x05, Buffer.alloc(4)));
    await reader.next().catch(() => undefined); // A-RELEASE-RP (or the peer just closes)
    return { associated: true, statuses };
  } finally {
    socket.destroy();
  }
}

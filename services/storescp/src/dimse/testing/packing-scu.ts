import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { readFileMeta } from '@dicomflow/test-helpers';

/** How the SCU lays PDVs into PDUs and PDUs onto the wire. */
export interface Packing {
  /** Largest PDV value (fragment) sent. */
  readonly fragment: number;
  /** Dataset PDVs per P-DATA-TF PDU. */
  readonly pdvsPerPdu: number;
  /** Put the command's PDV and the first dataset PDVs into one PDU. */
  readonly commandWithData: boolean;
  /** Write the byte stream in socket writes of this size (0: one write per PDU). */
  readonly writeSize: number;
}

const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';
const REPLY_TIMEOUT_MS = 20_000;
const u16 = (v: number): Buffer => Buffer.from([(v >> 8) & 0xff, v & 0xff]);
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
const item = (type: number, body: Buffer): Buffer =>
  Buffer.concat([Buffer.from([type, 0]), u16(body.length), body]);
const pdu = (type: number, body: Buffer): Buffer =>
  Buffer.concat([Buffer.from([type, 0]), u32(body.length), body]);
const pdv = (contextId: number, control: number, value: Buffer): Buffer =>
  Buffer.concat([u32(value.length + 2), Buffer.from([contextId, control]), value]);

function element(group: number, elem: number, value: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(elem, 2);
  header.writeUInt32LE(value.length, 4);
  return Buffer.concat([header, value]);
}

const uid = (value: string): Buffer => Buffer.from(value.length % 2 ? `${value}\0` : value, 'latin1');
const us = (value: number): Buffer => Buffer.from([value & 0xff, value >> 8]);

function storeCommand(messageId: number, sopClass: string, sopInstance: string): Buffer {
  const body = Buffer.concat([
    element(0, 0x0002, uid(sopClass)),
    element(0, 0x0100, us(0x0001)),
    element(0, 0x0110, us(messageId)),
    element(0, 0x0700, us(0)),
    element(0, 0x0800, us(0)),
    element(0, 0x1000, uid(sopInstance)),
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length);
  return Buffer.concat([element(0, 0, length), body]);
}

/** Status (0000,0900) of the first command PDV in a P-DATA-TF body, if any. */
function statusIn(body: Buffer): number | undefined {
  const command = body.subarray(6, 4 + body.readUInt32BE(0));
  for (let at = 0; at + 8 <= command.length; at += 8 + command.readUInt32LE(at + 4)) {
    if (command.readUInt16LE(at + 2) === 0x0900) return command.readUInt16LE(at + 8);
  }
  return undefined;
}

/** Reads PDUs off a socket, one `next()` at a time. */
function pduReader(socket: Socket): () => Promise<{ type: number; body: Buffer }> {
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    wake?.();
  });
  socket.on('close', () => {
    failure = new Error('connection closed');
    wake?.();
  });
  return async () => {
    for (;;) {
      if (buffered.length >= 6 && buffered.length >= 6 + buffered.readUInt32BE(2)) {
        const end = 6 + buffered.readUInt32BE(2);
        const out = { type: buffered.readUInt8(0), body: buffered.subarray(6, end) };
        buffered = buffered.subarray(end);
        return out;
      }
      if (failure) throw failure;
      // A receiver that never answers fails the test instead of hanging it.
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no PDU within ${REPLY_TIMEOUT_MS} ms`));
        }, REPLY_TIMEOUT_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
}

/**
 * A C-STORE SCU that packs PDVs into PDUs the ways PS3.8 allows but dcmtk's storescu does not use
 * (several PDVs per PDU, command and data in one PDU, tiny fragments, PDUs cut across socket writes),
 * so the receiver's PDU framing and dataset fast path meet them. Returns each file's C-STORE status.
 */
export async function packingStoreScu(
  port: number,
  files: readonly string[],
  packing: Packing,
): Promise<number[]> {
  const metas = await Promise.all(files.map((f) => readFileMeta(f)));
  const syntaxes = [...new Set(metas.map((m) => `${m.sopClassUid}|${m.transferSyntaxUid}`))];
  const socket = connect({ host: '127.0.0.1', port, noDelay: true }); // no Nagle: partial writes stay apart
  const next = pduReader(socket);
  // Between partial writes the event loop runs, so the receiver (in this process) reads each part
  // separately: its PDUs then really arrive cut across socket chunks.
  const send = async (bytes: Buffer): Promise<void> => {
    if (packing.writeSize <= 0) {
      socket.write(bytes);
      return;
    }
    for (let at = 0; at < bytes.length; at += packing.writeSize) {
      socket.write(bytes.subarray(at, at + packing.writeSize));
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const contexts = syntaxes.map((s, i) => {
      const [sopClass = '', syntax = ''] = s.split('|');
      return item(
        0x20,
        Buffer.concat([
          Buffer.from([i * 2 + 1, 0, 0, 0]),
          item(0x30, Buffer.from(sopClass)),
          item(0x40, Buffer.from(syntax)),
        ]),
      );
    });
    const userInfo = item(0x50, item(0x51, u32(1 << 20)));
    const ae = (t: string): Buffer => Buffer.from(t.padEnd(16, ' '));
    const header = Buffer.concat([u16(1), u16(0), ae('STORESCP'), ae('PACKINGSCU'), Buffer.alloc(32)]);
    await send(
      pdu(0x01, Buffer.concat([header, item(0x10, Buffer.from(APPLICATION_CONTEXT)), ...contexts, userInfo])),
    );
    const accept = await next();
    if (accept.type !== 0x02) throw new Error(`association not accepted (PDU type ${accept.type})`);
    const statuses: number[] = [];
    for (const [i, meta] of metas.entries()) {
      const contextId = syntaxes.indexOf(`${meta.sopClassUid}|${meta.transferSyntaxUid}`) * 2 + 1;
      const dataset = (await readFile(files[i] ?? '')).subarray(meta.datasetOffset);
      const fragments: Buffer[] = [];
      for (let at = 0; at < dataset.length; at += packing.fragment) {
        const last = at + packing.fragment >= dataset.length;
        fragments.push(pdv(contextId, last ? 2 : 0, dataset.subarray(at, at + packing.fragment)));
      }
      const command = pdv(contextId, 3, storeCommand(i + 1, meta.sopClassUid, meta.sopInstanceUid));
      const first = packing.commandWithData ? fragments.splice(0, packing.pdvsPerPdu) : [];
      await send(pdu(0x04, Buffer.concat([command, ...first])));
      while (fragments.length > 0)
        await send(pdu(0x04, Buffer.concat(fragments.splice(0, packing.pdvsPerPdu))));
      const response = await next();
      statuses.push(response.type === 0x04 ? (statusIn(response.body) ?? -1) : -1);
    }
    await send(pdu(0x05, Buffer.alloc(4)));
    await next();
    return statuses;
  } finally {
    socket.destroy();
  }
}

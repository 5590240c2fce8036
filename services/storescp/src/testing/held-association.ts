import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { associateRq, pdu, PduReader, readFileMeta, storeCommand } from '@dicomflow/test-helpers';

const PDATA_TF = 0x04;
const ASSOCIATE_AC = 0x02;
const RELEASE_RQ = 0x05;
/** Small enough for any receiver's announced max PDU. */
const PDV_BYTES = 16_000;

function pdvs(contextId: number, bytes: Buffer, isCommand: boolean): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += PDV_BYTES) {
    const part = bytes.subarray(at, at + PDV_BYTES);
    const last = at + PDV_BYTES >= bytes.length;
    const length = Buffer.alloc(4);
    length.writeUInt32BE(part.length + 2);
    const header = Buffer.from([contextId, (isCommand ? 1 : 0) | (last ? 2 : 0)]);
    out.push(pdu(PDATA_TF, Buffer.concat([length, header, part])));
  }
  return out;
}

/** (0000,0900) Status of a response command set (implicit VR little endian). */
function statusOf(command: Buffer): number | undefined {
  for (let at = 0; at + 8 <= command.length;) {
    const length = command.readUInt32LE(at + 4);
    if (command.readUInt16LE(at) === 0 && command.readUInt16LE(at + 2) === 0x0900)
      return command.readUInt16LE(at + 8);
    at += 8 + length;
  }
  return undefined;
}

/**
 * An association the test keeps open between stores: each `store` sends one file (one presentation
 * context: the files' SOP class and transfer syntax, which must all be the same) and returns its C-STORE
 * status. For tests of what happens to an association cut in the middle.
 */
export class HeldAssociation {
  private messageId = 1;

  private constructor(
    private readonly socket: Socket,
    private readonly reader: PduReader,
  ) {}

  /** Connects and associates, proposing the SOP class and transfer syntax of `sample`. */
  static async open(port: number, sample: string, calledAe = 'STORESCP'): Promise<HeldAssociation> {
    const meta = await readFileMeta(sample);
    const socket = connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    const reader = new PduReader(socket, 30_000);
    await reader.connected();
    socket.write(
      associateRq('HELDSCU', calledAe, [{ sopClass: meta.sopClassUid, syntax: meta.transferSyntaxUid }]),
    );
    const answer = await reader.next();
    if (answer.type !== ASSOCIATE_AC) {
      socket.destroy();
      throw new Error(`association not accepted (PDU type ${answer.type})`);
    }
    return new HeldAssociation(socket, reader);
  }

  /** Sends `file` and resolves with the status of its C-STORE response. */
  async store(file: string): Promise<number | undefined> {
    const meta = await readFileMeta(file);
    const dataset = (await readFile(file)).subarray(meta.datasetOffset);
    const command = storeCommand(this.messageId++, meta.sopClassUid, meta.sopInstanceUid);
    for (const bytes of [...pdvs(1, command, true), ...pdvs(1, dataset, false)]) this.socket.write(bytes);
    const parts: Buffer[] = [];
    for (;;) {
      const received = await this.reader.next();
      if (received.type !== PDATA_TF) throw new Error(`PDU type ${received.type} instead of a response`);
      for (let at = 0; at + 6 <= received.body.length;) {
        const length = received.body.readUInt32BE(at);
        const control = received.body.readUInt8(at + 5);
        if (control & 1) parts.push(received.body.subarray(at + 6, at + 4 + length));
        if ((control & 3) === 3) return statusOf(Buffer.concat(parts));
        at += 4 + length;
      }
    }
  }

  /** Resolves once the receiver's side closed the connection (it rejects what `next` waits for). */
  async dropped(): Promise<boolean> {
    try {
      await this.reader.next();
      return false;
    } catch {
      return true;
    }
  }

  /** Releases the association (if the connection still stands) and closes it. */
  async release(): Promise<void> {
    if (!this.socket.destroyed) {
      this.socket.write(pdu(RELEASE_RQ, Buffer.alloc(4)));
      await this.reader.next().catch(() => undefined);
    }
    this.socket.destroy();
  }
}

import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import {
  associateRq,
  commandStatus,
  pDataPdus,
  pdu,
  PduReader,
  readCommand,
  readFileMeta,
  storeCommand,
} from '@dicomflow/test-helpers';

const ASSOCIATE_AC = 0x02;
const RELEASE_RQ = 0x05;
/** Small enough for any receiver's announced max PDU: PDVs of 16,000 bytes. */
const MAX_PDU = 16_006;

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
    for (const bytes of [...pDataPdus(1, command, true, MAX_PDU), ...pDataPdus(1, dataset, false, MAX_PDU)])
      this.socket.write(bytes);
    const response = await readCommand(() => this.reader.next());
    if (response === null) throw new Error('a PDU other than P-DATA instead of a response');
    return commandStatus(response) ?? undefined;
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

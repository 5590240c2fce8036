import { connect, type Socket } from 'node:net';

/** One PDU as received: type and body (after the 6-byte header). */
export interface ReceivedPdu {
  readonly type: number;
  readonly body: Buffer;
}

/** The command of a DIMSE response: the fields tests assert on. */
export interface ReceivedCommand {
  readonly commandField: number | undefined;
  readonly status: number | undefined;
  readonly errorComment: string | undefined;
}

const REPLY_TIMEOUT_MS = 30_000;

/**
 * A raw DICOM peer for tests: sends whatever bytes it is given and reads back PDUs and the connection's
 * end, so a test can assert exactly what the receiver answered (A-ASSOCIATE-RJ, A-ABORT, a status).
 */
export class RawPeer {
  private buffered = Buffer.alloc(0);
  private readonly ready: ReceivedPdu[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  /** Resolves when the connection closes (from either side). */
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 6 && this.buffered.length >= 6 + this.buffered.readUInt32BE(2)) {
        const end = 6 + this.buffered.readUInt32BE(2);
        this.ready.push({ type: this.buffered.readUInt8(0), body: this.buffered.subarray(6, end) });
        this.buffered = this.buffered.subarray(end);
      }
      this.wake?.();
    });
    socket.on('error', () => undefined); // a reset by the receiver shows as the close
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  /** Connects to the receiver on 127.0.0.1:`port`. */
  static async connect(port: number): Promise<RawPeer> {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawPeer(socket);
  }

  /** Writes bytes; resolves once they are handed to the kernel (or the connection is gone). */
  send(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        resolve();
        return;
      }
      this.socket.write(bytes, () => resolve());
    });
  }

  /** The next PDU; rejects when the connection ended first or nothing came within 30 s. */
  async next(): Promise<ReceivedPdu> {
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    for (;;) {
      const pdu = this.ready.shift();
      if (pdu) return pdu;
      if (this.ended) throw new Error('connection closed before a PDU');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no PDU within ${REPLY_TIMEOUT_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** The next PDU, which must be a P-DATA-TF holding a command: its command field, status and comment. */
  async nextCommand(): Promise<ReceivedCommand> {
    const pdu = await this.next();
    if (pdu.type !== 0x04) throw new Error(`expected P-DATA-TF, got PDU type ${pdu.type}`);
    const command = pdu.body.subarray(6, 4 + pdu.body.readUInt32BE(0));
    const found: { commandField?: number; status?: number; errorComment?: string } = {};
    for (let at = 0; at + 8 <= command.length; at += 8 + command.readUInt32LE(at + 4)) {
      const element = command.readUInt16LE(at + 2);
      const value = command.subarray(at + 8, at + 8 + command.readUInt32LE(at + 4));
      if (element === 0x0100) found.commandField = value.readUInt16LE(0);
      if (element === 0x0900) found.status = value.readUInt16LE(0);
      if (element === 0x0902) found.errorComment = value.toString('latin1').trim();
    }
    return { commandField: found.commandField, status: found.status, errorComment: found.errorComment };
  }

  /** Waits for the receiver to close the connection (bounded by the test's timeout). */
  async closedByReceiver(): Promise<void> {
    await this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

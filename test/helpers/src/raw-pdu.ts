import type { Socket } from 'node:net';

/** One DICOM upper-layer PDU: its type byte and body (after the 6-byte header). */
export interface Pdu {
  readonly type: number;
  readonly body: Buffer;
}

/** Splits a socket's byte stream into PDUs and hands them out one `next()` at a time. */
export class PduReader {
  private buffered = Buffer.alloc(0);
  private readonly ready: Pdu[] = [];
  private waiting: { resolve: (pdu: Pdu) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly opened: Promise<void>;

  constructor(
    socket: Socket,
    private readonly timeoutMs: number,
  ) {
    this.opened = new Promise((resolve, reject) => {
      socket.once('connect', () => {
        resolve();
      });
      socket.once('error', reject);
    });
    socket.on('data', (chunk: Buffer) => {
      this.receive(chunk);
    });
    socket.on('error', (error) => {
      this.fail(error);
    });
    socket.on('close', () => {
      this.fail(new Error('connection closed'));
    });
  }

  connected(): Promise<void> {
    return this.opened;
  }

  next(): Promise<Pdu> {
    const pdu = this.ready.shift();
    if (pdu) return Promise.resolve(pdu);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no PDU within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting = {
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private receive(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 6) {
      const length = this.buffered.readUInt32BE(2);
      if (this.buffered.length < 6 + length) break;
      const pdu = { type: this.buffered.readUInt8(0), body: this.buffered.subarray(6, 6 + length) };
      this.buffered = this.buffered.subarray(6 + length);
      this.deliver(pdu);
    }
  }

  private deliver(pdu: Pdu): void {
    const waiter = this.waiting;
    this.waiting = undefined;
    if (waiter) waiter.resolve(pdu);
    else this.ready.push(pdu);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const waiter = this.waiting;
    this.waiting = undefined;
    waiter?.reject(error);
  }
}

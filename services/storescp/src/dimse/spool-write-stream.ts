import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';

const HIGH_WATER_MARK = 4 * 1024 * 1024;

/**
 * The file of one incoming instance: Part-10 prefix first, then the dataset bytes as they arrive. It pushes
 * back on the network: when the disk falls behind, the association's socket is paused until the file
 * catches up, so memory never holds more than a few MB per association. (dcmjs-dimse stops honouring a
 * full writable after the first time, so the pause has to happen here.) With `fsync`, the data is on stable
 * storage before the stream finishes.
 */
export class SpoolWriteStream extends Writable {
  private handle: FileHandle | undefined;

  constructor(
    readonly path: string,
    private readonly prefix: Buffer,
    private readonly socket: Socket,
    private readonly fsync: boolean,
  ) {
    super({ highWaterMark: HIGH_WATER_MARK });
    this.on('drain', () => socket.resume());
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.path, 'wx')
      .then(async (handle) => {
        this.handle = handle;
        await handle.write(this.prefix);
      })
      .then(() => callback(), callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.file()
      .write(chunk)
      .then(() => callback(), callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    this.file()
      .writev(chunks.map((c) => c.chunk))
      .then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const handle = this.file();
    (this.fsync ? handle.datasync() : Promise.resolve())
      .then(() => handle.close())
      .then(() => {
        this.handle = undefined;
        callback();
      }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.resume();
    const handle = this.handle;
    this.handle = undefined;
    if (!handle) {
      callback(error);
      return;
    }
    handle.close().then(
      () => callback(error),
      () => callback(error),
    );
  }

  override write(chunk: unknown, ...rest: never[]): boolean {
    const ok = super.write(chunk, ...rest);
    if (!ok) this.socket.pause();
    return ok;
  }

  private file(): FileHandle {
    if (!this.handle) throw new Error('spool file is not open');
    return this.handle;
  }
}

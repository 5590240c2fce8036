import { closeSync, fdatasync, openSync, writev, writevSync } from 'node:fs';
import { Writable } from 'node:stream';
import {
  DatasetFramer,
  DicomParseError,
  inspectPart10Buffer,
  inspectPart10File,
  TransferSyntax,
  type InstanceInfo,
  type ReadElementsOptions,
} from '@dicomflow/dicom';

/** Header bytes kept to read the instance's elements without reading the file back. */
const HEADER_CAP = 1024 * 1024;
/** Bytes handed to the file system and not yet written, past which the stream stops taking more. */
const MAX_BYTES_IN_FLIGHT = 2 * 1024 * 1024;
/** Slices per writev call (IOV_MAX is 1024 on Linux). */
const MAX_PIECES_PER_WRITE = 512;

/**
 * The file of one incoming instance: Part-10 prefix first, then the dataset bytes as they arrive, so no
 * instance is ever held whole in memory. With `fsync`, the data is on stable storage before the stream
 * finishes. On the way, the dataset's framing is checked (a truncated dataset is caught without reading
 * the file back) and the header up to Pixel Data is kept, so {@link inspect} is nearly free.
 *
 * Writes are pipelined: each PDV's slices are queued for libuv's thread pool and the stream takes the next
 * ones without waiting, up to {@link MAX_BYTES_IN_FLIGHT}; it finishes when every write has landed. So copying into the page cache runs on other threads (on another core) while this one reads
 * the socket, and only the last write's completion lies between an instance's last byte and its
 * response. (Waiting for each write in turn cost ~6 ms per 0.5 MB instance.)
 *
 * With `inline` (the receiver gives it while one association is open), the same writes are made
 * synchronously on this thread instead: handing each to the pool costs two thread wake-ups, and on a
 * small machine with one sender that cost more than the copy itself (bench/ingest, warm, 2 cores: 15-20%
 * less receiver CPU). With several associations the pool spreads their copies over the other cores.
 */
export class SpoolWriteStream extends Writable {
  private fd: number | undefined;
  private readonly framer: DatasetFramer | undefined;
  private framingError: Error | undefined;
  private header: Buffer[] = [];
  private headerBytes = 0;
  private headerComplete = false;
  /** File offset of the next write; the prefix goes out with the first. */
  private position = 0;
  private prefixWritten = false;
  /** Slices waiting for the write in progress to finish; written together next. */
  private readonly queued: Buffer[] = [];
  private writing = false;
  /** Bytes queued or being written. */
  private bytesInFlight = 0;
  private writeError: Error | undefined;
  /** The write callback held back while too many bytes are in flight. */
  private heldBack: ((error?: Error | null) => void) | undefined;
  private readonly idleWaiters: Array<() => void> = [];

  /** `fd`: the file at `path`, already created and open for writing (else it is created here). */
  constructor(
    readonly path: string,
    private readonly prefix: Buffer,
    transferSyntaxUid: string,
    private readonly fsync: boolean,
    fd?: number,
    private readonly inline = false,
    private readonly readOptions: ReadElementsOptions = {},
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.fd = fd;
    // Deflated data would need inflating first; that rare case is checked from the file instead.
    this.framer =
      transferSyntaxUid === TransferSyntax.DeflatedExplicitVRLittleEndian
        ? undefined
        : new DatasetFramer(transferSyntaxUid);
  }

  /**
   * The instance's identity and elements, once the stream finished. Throws DicomParseError when the dataset
   * does not frame (truncated, not DICOM) and MissingTagError when an identifying element is missing.
   */
  async inspect(): Promise<InstanceInfo> {
    if (this.framingError) throw new DicomParseError(this.framingError.message);
    if (!this.framer || !this.headerComplete) return inspectPart10File(this.path, this.readOptions);
    const size = this.prefix.length + this.framer.bytesSeen;
    // With tiny fragments, the first bytes of Pixel Data's header were kept before the framer saw the
    // whole tag; the header ends where Pixel Data starts.
    const datasetHeader = Math.min(this.headerBytes, this.framer.pixelDataOffset ?? this.headerBytes);
    const header = Buffer.concat([this.prefix, ...this.header], this.prefix.length + datasetHeader);
    return { ...inspectPart10Buffer(header, { ...this.readOptions, validate: false }), size };
  }

  private observe(chunks: readonly Buffer[]): void {
    if (!this.framer || this.framingError) return;
    try {
      for (const chunk of chunks) {
        this.framer.push(chunk);
        if (!this.headerComplete && this.headerBytes <= HEADER_CAP) {
          // A copy of just the bytes before Pixel Data: a slice would keep the whole received chunk
          // (64 KiB) alive until the instance is inspected, long enough to reach the old generation, where
          // such buffers pile up until a full GC (measured: RSS +30 KiB per instance of a long series).
          const pixelData = this.framer.pixelDataOffset;
          const keep = pixelData === undefined ? chunk.length : Math.max(0, pixelData - this.headerBytes);
          if (keep > 0) this.header.push(Buffer.from(chunk.subarray(0, keep)));
          this.headerBytes += keep;
          if (pixelData !== undefined) this.headerComplete = true;
        }
      }
    } catch (err) {
      this.framingError = err as Error;
    }
  }

  override _construct(callback: (error?: Error | null) => void): void {
    try {
      this.fd ??= openSync(this.path, 'wx');
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeChunks([chunk], callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    this.writeChunks(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    if (fd === undefined) {
      callback(new Error('spool file is not open'));
      return;
    }
    if (this.framer && !this.framingError) {
      try {
        this.framer.end();
        // A dataset without Pixel Data is whole in the header when it fits.
        if (this.headerBytes <= HEADER_CAP) this.headerComplete = true;
      } catch (err) {
        this.framingError = err as Error;
      }
    }
    // An empty dataset still leaves a file with its prefix.
    if (!this.prefixWritten) this.submit(fd, []);
    this.whenIdle(() => {
      const close = (syncError?: Error | null): void => {
        this.fd = undefined;
        try {
          closeSync(fd);
          callback(syncError ?? this.writeError);
        } catch (err) {
          callback(syncError ?? this.writeError ?? (err as Error));
        }
      };
      if (this.fsync && !this.writeError) fdatasync(fd, (err) => close(err));
      else close();
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Writes still in the thread pool use the descriptor: it is closed after them, never under them
    // (a number closed and reused meanwhile would take their bytes into another file). What is only
    // queued is dropped: a destroyed instance is never answered with success, its file is discarded.
    this.queued.length = 0;
    this.whenIdle(() => {
      if (this.fd !== undefined) {
        try {
          closeSync(this.fd);
        } catch {
          // already failing; the original error is what matters
        }
        this.fd = undefined;
      }
      callback(error);
    });
  }

  private writeChunks(chunks: Buffer[], callback: (error?: Error | null) => void): void {
    if (this.fd === undefined) {
      callback(new Error('spool file is not open'));
      return;
    }
    if (this.writeError) {
      callback(this.writeError);
      return;
    }
    this.observe(chunks);
    this.submit(this.fd, chunks);
    if (this.bytesInFlight <= MAX_BYTES_IN_FLIGHT) callback();
    else this.heldBack = callback;
  }

  /**
   * Queues `chunks` (after the prefix, the first time) for the file. One write per file is in the thread
   * pool at a time, taking everything queued meanwhile in one call: parallel writes to one file would only
   * contend for its inode lock (perf showed kernel time spinning on it), and one call costs less than several.
   */
  private submit(fd: number, chunks: Buffer[]): void {
    const pieces = this.prefixWritten ? chunks : [this.prefix, ...chunks];
    this.prefixWritten = true;
    for (const piece of pieces) {
      if (piece.length === 0) continue;
      this.queued.push(piece);
      this.bytesInFlight += piece.length;
    }
    if (!this.writing) this.writeQueued(fd);
  }

  private writeQueued(fd: number): void {
    const pieces = this.queued.splice(0, MAX_PIECES_PER_WRITE);
    if (pieces.length === 0) {
      this.writing = false;
      for (const wake of this.idleWaiters.splice(0)) wake();
      return;
    }
    this.writing = true;
    let bytes = 0;
    for (const piece of pieces) bytes += piece.length;
    const at = this.position;
    this.position += bytes;
    writeAllAt(fd, pieces, at, this.inline, (err) => {
      this.bytesInFlight -= bytes;
      if (err) this.writeError ??= err;
      const held = this.heldBack;
      if (held && (this.bytesInFlight <= MAX_BYTES_IN_FLIGHT || this.writeError)) {
        this.heldBack = undefined;
        held(this.writeError);
      }
      if (this.writeError) this.queued.length = 0; // nothing after a failed write is worth writing
      this.writeQueued(fd);
    });
  }

  private whenIdle(then: () => void): void {
    if (!this.writing) then();
    else this.idleWaiters.push(then);
  }
}

/**
 * Writes every byte of `chunks` at `position`, continuing after short writes; in the thread pool, or with
 * `inline` synchronously (then `done` runs before this returns).
 */
function writeAllAt(
  fd: number,
  chunks: Buffer[],
  position: number,
  inline: boolean,
  done: (err: Error | null) => void,
): void {
  const pending = chunks.filter((c) => c.length > 0);
  if (pending.length === 0) {
    done(null);
    return;
  }
  const written = (err: Error | null, bytes: number): void => {
    if (err) {
      done(err);
      return;
    }
    const rest: Buffer[] = [];
    let skip = bytes;
    for (const chunk of pending) {
      if (skip >= chunk.length) {
        skip -= chunk.length;
      } else {
        rest.push(chunk.subarray(skip));
        skip = 0;
      }
    }
    if (rest.length === 0) done(null);
    else writeAllAt(fd, rest, position + bytes, inline, done);
  };
  if (!inline) {
    writev(fd, pending, position, written);
    return;
  }
  let bytes: number;
  try {
    bytes = writevSync(fd, pending, position);
  } catch (err) {
    written(err as Error, 0);
    return;
  }
  written(null, bytes);
}

import { closeSync, fdatasync, openSync, writev, writevSync } from 'node:fs';
import { open } from 'node:fs/promises';
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
import { PieceCoalescer } from './piece-coalescer.js';

/** The first `length` bytes of a file. */
async function readPrefix(path: string, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const bytes = Buffer.alloc(length);
    const { bytesRead } = await handle.read(bytes, 0, length, 0);
    return bytes.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Header bytes kept to read the instance's elements without reading the file back. */
const HEADER_CAP = 1024 * 1024;
/** Bytes handed to the file system and not yet written, past which the stream stops taking more. */
const MAX_BYTES_IN_FLIGHT = 2 * 1024 * 1024;
/** Slices per writev call (IOV_MAX is 1024 on Linux). */
const MAX_PIECES_PER_WRITE = 512;
/** Written slots are dropped from the queue's front once this many have piled up. */
const COMPACT_AFTER = 4096;
/**
 * Inline, bytes are written once this many are pending (or at the end): a peer sending its dataset in
 * tiny PDUs would otherwise cost one system call per PDU.
 */
const INLINE_WRITE_MIN = 64 * 1024;
/** First size of the header buffer; it doubles as needed. */
const HEADER_INITIAL = 16 * 1024;

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
  /** Dataset bytes received so far (written or, past {@link maxDatasetBytes}, dropped). */
  private datasetBytes = 0;
  private readonly framer: DatasetFramer | undefined;
  private framingError: Error | undefined;
  /** The dataset's first bytes (up to Pixel Data), in one buffer grown by doubling: no object per chunk. */
  private header = Buffer.alloc(0);
  private headerBytes = 0;
  private headerComplete = false;
  /** File offset of the next write; the prefix goes out with the first. */
  private position = 0;
  private prefixWritten = false;
  /**
   * Bytes waiting for the write in progress to finish, written together next: small pieces copied
   * together (a dataset sent as a million 1-byte PDVs is a few slices, not a million queue entries),
   * then `queued[queueHead...]` in order.
   */
  private readonly pending = new PieceCoalescer();
  private queued: Buffer[] = [];
  private queueHead = 0;
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
    /** Dataset bytes kept at most (MAX_INSTANCE_BYTES); the rest of a larger one is read and dropped. */
    readonly maxDatasetBytes = Number.POSITIVE_INFINITY,
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
  /** True when the dataset was larger than {@link maxDatasetBytes}: it was not kept whole. */
  get oversize(): boolean {
    return this.datasetBytes > this.maxDatasetBytes;
  }

  async inspect(): Promise<InstanceInfo> {
    if (this.framingError) throw new DicomParseError(this.framingError.message);
    if (!this.framer) return inspectPart10File(this.path, this.readOptions);
    const size = this.prefix.length + this.framer.bytesSeen;
    const pixelDataAt = this.framer.pixelDataOffset;
    if (!this.headerComplete && pixelDataAt !== undefined) {
      // A header over HEADER_CAP (an enhanced multi-frame's per-frame groups): its framing was checked as
      // it streamed, so only the bytes before Pixel Data are read back, never the frames.
      const header = await readPrefix(this.path, this.prefix.length + pixelDataAt);
      return { ...inspectPart10Buffer(header, { ...this.readOptions, validate: false }), size };
    }
    if (!this.headerComplete) return inspectPart10File(this.path, this.readOptions);
    // With tiny fragments, the first bytes of Pixel Data's header were kept before the framer saw the
    // whole tag; the header ends where Pixel Data starts.
    const datasetHeader = Math.min(this.headerBytes, this.framer.pixelDataOffset ?? this.headerBytes);
    const header = Buffer.concat([this.prefix, this.header.subarray(0, datasetHeader)]);
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
          if (keep > 0) this.keepHeader(chunk.subarray(0, keep));
          if (pixelData !== undefined) this.headerComplete = true;
        }
      }
    } catch (err) {
      this.framingError = err as Error;
    }
  }

  /** Appends to the kept header, growing its buffer by doubling (amortised O(1) per byte). */
  private keepHeader(bytes: Buffer): void {
    const needed = this.headerBytes + bytes.length;
    if (needed > this.header.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.header.length * 2, HEADER_INITIAL));
      this.header.copy(grown, 0, 0, this.headerBytes);
      this.header = grown;
    }
    bytes.copy(this.header, this.headerBytes);
    this.headerBytes = needed;
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
    // What inline mode held back (under INLINE_WRITE_MIN) goes out now.
    if (!this.writing) this.writeQueued(fd);
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
    this.dropQueued();
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
    // Past the bound the sender's bytes are still taken off the wire (the association goes on) but go
    // nowhere: the instance is refused once it ends, and the disk holds only what came before.
    for (const chunk of chunks) this.datasetBytes += chunk.length;
    if (this.datasetBytes > this.maxDatasetBytes) {
      callback();
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
      this.pending.add(piece);
      this.bytesInFlight += piece.length;
    }
    // Inline, a write costs a system call on this thread whatever its size: small ones wait for more.
    if (!this.writing && (!this.inline || this.pending.pendingBytes >= INLINE_WRITE_MIN))
      this.writeQueued(fd);
  }

  /** The next slices to write (at most {@link MAX_PIECES_PER_WRITE}), taken from the queue's front. */
  private nextPieces(): Buffer[] {
    for (const piece of this.pending.drain()) this.queued.push(piece);
    const end = Math.min(this.queued.length, this.queueHead + MAX_PIECES_PER_WRITE);
    const pieces = this.queued.slice(this.queueHead, end);
    this.queueHead = end;
    if (this.queueHead === this.queued.length) {
      this.queued = [];
      this.queueHead = 0;
    } else if (this.queueHead >= COMPACT_AFTER && this.queueHead * 2 >= this.queued.length) {
      this.queued = this.queued.slice(this.queueHead);
      this.queueHead = 0;
    }
    return pieces;
  }

  private dropQueued(): void {
    this.pending.clear();
    this.queued = [];
    this.queueHead = 0;
  }

  private writeQueued(fd: number): void {
    const pieces = this.nextPieces();
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
      if (this.writeError) this.dropQueued(); // nothing after a failed write is worth writing
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

/** PDU types of the DICOM upper layer (PS3.8 9.3): A-ASSOCIATE-RQ (1) to A-ABORT (7). */
const FIRST_PDU_TYPE = 0x01;
const LAST_PDU_TYPE = 0x07;
/** Type (1), reserved (1), length (4, big endian). */
export const PDU_HEADER_LENGTH = 6;

/** One complete PDU, header included, as it lies in the received chunks (no bytes copied). */
export interface FramedPdu {
  readonly type: number;
  /** Header plus body. */
  readonly length: number;
  /** Consecutive slices of the received chunks that together are the PDU, in order. */
  readonly pieces: readonly Buffer[];
}

/** The peer sent a PDU type the upper layer does not define; the stream cannot be framed any further. */
export class UnknownPduTypeError extends Error {
  constructor(readonly pduType: number) {
    super(`Unknown PDU type: ${pduType}`);
    this.name = 'UnknownPduTypeError';
  }
}

/**
 * The peer announced a PDU longer than we accept. Every PDU is held until it is complete, so without this
 * limit one header claiming 4 GiB would make the receiver buffer whatever the peer sends next.
 */
export class PduTooLongError extends Error {
  constructor(
    readonly pduType: number,
    readonly pduLength: number,
    readonly limit: number,
  ) {
    super(`PDU of type ${pduType} announces ${pduLength} bytes; at most ${limit} are accepted`);
    this.name = 'PduTooLongError';
  }
}

/** A stream the framer cannot go on with. */
export type FramingError = UnknownPduTypeError | PduTooLongError;

/**
 * The longest PDU (header included) accepted when we announced `maxPduLength` (0 = unlimited): a P-DATA-TF
 * may not exceed what we announced (PS3.8 D.1), and the other PDUs are small (an A-ASSOCIATE-RQ with
 * 128 presentation contexts is some tens of KiB), so at least 1 MiB is allowed; "unlimited" means 64 MiB.
 */
export function pduLengthLimit(maxPduLength: number): number {
  const MIB = 1024 * 1024;
  return PDU_HEADER_LENGTH + (maxPduLength === 0 ? 64 * MIB : Math.max(maxPduLength, MIB));
}

/** Chunks shorter than this are copied together (see {@link PduFramer}). */
const SMALL_CHUNK = 256;
/** Size of the buffers small chunks are copied into. */
const STAGING_SIZE = 16 * 1024;
/** Handed-out chunk slots are dropped from the list once this many have piled up at its front. */
const COMPACT_AFTER = 1024;

/**
 * Cuts a socket's byte stream into PDUs without copying: chunks are kept as received and each PDU is
 * handed out as slices of them. Replaces the library's accumulator, which concatenates every chunk onto
 * the partial PDU: several copies and short-lived buffers per PDU.
 *
 * Every step is constant per chunk whatever the peer does: chunks are consumed from a head index (not
 * `shift()`, which moves the whole list: a PDU sent byte by byte took minutes), and chunks under
 * {@link SMALL_CHUNK} bytes are copied into shared staging buffers, so a PDU dribbled in tiny segments is
 * held as a few slices instead of one Buffer object (~100 bytes of heap) per byte.
 */
export class PduFramer {
  private chunks: Buffer[] = [];
  /** Index in `chunks` of the first chunk not wholly handed out. */
  private head = 0;
  /** Bytes of `chunks[head]` already handed out. */
  private consumed = 0;
  private buffered = 0;
  private failed = false;
  /** Where small chunks are copied; the last chunk is `staging[stagingStart, stagingEnd)` when `tailStaged`. */
  private staging: Buffer | undefined;
  private stagingStart = 0;
  private stagingEnd = 0;
  private tailStaged = false;

  constructor(
    private readonly onPdu: (pdu: FramedPdu) => void,
    private readonly onError: (error: FramingError) => void,
    /**
     * Longest PDU accepted, header included ({@link pduLengthLimit}); a function is asked at each PDU
     * header, so the limit can depend on the association's state.
     */
    private readonly maxLength: number | (() => number) = Number.POSITIVE_INFINITY,
  ) {}

  /** Takes the next chunk from the socket; calls `onPdu` for every PDU it completes, in order. */
  push(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    this.append(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= PDU_HEADER_LENGTH) {
      const type = this.byteAt(0);
      if (type < FIRST_PDU_TYPE || type > LAST_PDU_TYPE) {
        this.fail(new UnknownPduTypeError(type));
        return;
      }
      const length =
        PDU_HEADER_LENGTH +
        (this.byteAt(2) * 0x1000000 + ((this.byteAt(3) << 16) | (this.byteAt(4) << 8) | this.byteAt(5)));
      const limit = typeof this.maxLength === 'number' ? this.maxLength : this.maxLength();
      if (length > limit) {
        this.fail(new PduTooLongError(type, length, limit));
        return;
      }
      if (this.buffered < length) return;
      this.onPdu({ type, length, pieces: this.take(length) });
    }
  }

  /** Bytes held for a PDU not yet complete (for tests and diagnostics). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Nothing after an unframeable PDU can be trusted; the caller tears the association down. */
  private fail(error: FramingError): void {
    this.failed = true;
    this.chunks = [];
    this.head = 0;
    this.consumed = 0;
    this.buffered = 0;
    this.staging = undefined;
    this.tailStaged = false;
    this.onError(error);
  }

  /** Adds a chunk at the end: as it is, or copied onto the staging buffer when small. */
  private append(chunk: Buffer): void {
    if (chunk.length >= SMALL_CHUNK) {
      this.chunks.push(chunk);
      this.tailStaged = false;
      return;
    }
    let staging = this.staging;
    if (!staging || this.stagingEnd + chunk.length > staging.length) {
      // Bytes already in the old buffer stay valid: slices of it were handed out or are still listed.
      staging = Buffer.allocUnsafe(STAGING_SIZE);
      this.staging = staging;
      this.stagingEnd = 0;
      this.tailStaged = false;
    }
    chunk.copy(staging, this.stagingEnd);
    if (!this.tailStaged) {
      this.stagingStart = this.stagingEnd;
      this.chunks.push(staging); // replaced just below by the exact slice
      this.tailStaged = true;
    }
    this.stagingEnd += chunk.length;
    // The list's last chunk grows in place; a consumed offset into it stays valid.
    this.chunks[this.chunks.length - 1] = staging.subarray(this.stagingStart, this.stagingEnd);
  }

  /** Pieces of the next `count` buffered bytes (count <= buffered), removed from the buffer. */
  private take(count: number): Buffer[] {
    const pieces: Buffer[] = [];
    let left = count;
    while (left > 0) {
      const chunk = this.chunks[this.head];
      if (!chunk) break;
      const available = chunk.length - this.consumed;
      if (available <= left) {
        pieces.push(this.consumed === 0 ? chunk : chunk.subarray(this.consumed));
        this.head += 1;
        this.consumed = 0;
        left -= available;
      } else {
        pieces.push(chunk.subarray(this.consumed, this.consumed + left));
        this.consumed += left;
        left = 0;
      }
    }
    this.buffered -= count;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
      this.tailStaged = false;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.chunks.length) {
      // Amortised: each slot is moved at most once per time the list halves.
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    return pieces;
  }

  /** The buffered byte at `offset` from the start of the unconsumed data (offset < buffered). */
  private byteAt(offset: number): number {
    let at = this.consumed + offset;
    for (let i = this.head; i < this.chunks.length; i++) {
      const chunk = this.chunks[i];
      if (!chunk) break;
      if (at < chunk.length) return chunk[at] ?? 0;
      at -= chunk.length;
    }
    return 0;
  }
}

/** The PDU as one buffer: the slice itself when it lies in one chunk, else a single exact-size copy. */
export function joinPdu(pdu: FramedPdu): Buffer {
  const [first] = pdu.pieces;
  if (pdu.pieces.length === 1 && first) return first;
  return Buffer.concat(pdu.pieces, pdu.length);
}

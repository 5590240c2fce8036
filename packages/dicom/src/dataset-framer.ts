import { TransferSyntax } from './uids.js';
import { hasLongLength, isKnownVr } from './explicit-vr.js';

/*
 * dcmjs reads a dataset whose last value is cut short without complaint (it returns the bytes that are
 * there), so a truncated C-STORE would be stored as if it were whole. This checks only the framing of the
 * encoding (tags, lengths, items, delimiters) without decoding values, which is what detecting truncation
 * needs. It runs on bytes as they stream in, in constant memory, so the receiver validates an instance
 * without reading it back.
 */

const UNDEFINED_LENGTH = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const PIXEL_DATA = 0x7fe00010;
const MAX_DEPTH = 32;
const EMPTY = Buffer.alloc(0);

/** Raised when a dataset's encoding does not frame correctly (truncated, overlong lengths, bad delimiters). */
export class DatasetStructureError extends Error {
  override readonly name = 'DatasetStructureError';
}

interface Encoding {
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
}

const IMPLICIT_LE: Encoding = { explicitVr: false, littleEndian: true };

/** Encoding of the dataset bytes for a (non-deflated) transfer syntax. */
export function encodingOf(transferSyntaxUid: string): Encoding {
  switch (transferSyntaxUid) {
    case TransferSyntax.ImplicitVRLittleEndian:
      return IMPLICIT_LE;
    case TransferSyntax.ExplicitVRBigEndian:
      return { explicitVr: true, littleEndian: false };
    default:
      return { explicitVr: true, littleEndian: true };
  }
}

/** Where the framer is: reading elements of a dataset, or items of an undefined-length element. */
interface Frame {
  readonly kind: 'elements' | 'items';
  readonly encoding: Encoding;
  /** An undefined-length item ends at an item delimiter; the top-level dataset at the end of data. */
  readonly delimited: boolean;
  /** Items of a sequence hold datasets; items of encapsulated pixel data hold fragments. */
  readonly itemsAreDatasets: boolean;
}

/**
 * Incremental framing check of a dataset. Feed it the dataset bytes in order with {@link push}, then call
 * {@link end}; either throws a {@link DatasetStructureError} at the first problem. It also reports where
 * the top-level Pixel Data element starts, so a caller can keep just the header.
 */
export class DatasetFramer {
  private readonly stack: Frame[];
  private position = 0;
  private skip = 0;
  private header = EMPTY;
  /** Offset of the top-level Pixel Data element's tag, once seen. */
  pixelDataOffset: number | undefined;

  constructor(transferSyntaxUid: string) {
    this.stack = [
      { kind: 'elements', encoding: encodingOf(transferSyntaxUid), delimited: false, itemsAreDatasets: true },
    ];
  }

  /** Bytes consumed so far. */
  get bytesSeen(): number {
    return this.position + this.header.length;
  }

  push(chunk: Buffer): void {
    const data = this.header.length > 0 ? Buffer.concat([this.header, chunk]) : chunk;
    const base = this.position; // absolute offset of data[0]
    this.header = EMPTY;
    let at = 0;
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length - at);
        this.skip -= n;
        at += n;
        if (this.skip > 0) break;
      }
      if (at >= data.length) break;
      const consumed = this.step(data, at, base + at);
      if (consumed === 0) {
        // A header split across chunks: keep its few bytes for the next push.
        this.header = Buffer.from(data.subarray(at));
        break;
      }
      at += consumed;
    }
    this.position = base + at;
  }

  /** Declares the end of the data; throws when the dataset was cut short. */
  end(): void {
    if (this.skip > 0)
      throw new DatasetStructureError(`dataset ends ${this.skip} bytes before the end of a value`);
    if (this.header.length > 0)
      throw new DatasetStructureError(`dataset ends inside an element header at offset ${this.position}`);
    if (this.stack.length > 1)
      throw new DatasetStructureError('dataset ends inside an undefined-length sequence or item');
  }

  /** Reads one header at `at` (absolute offset `offset`); returns bytes consumed, or 0 when more data is needed. */
  private step(data: Buffer, at: number, offset: number): number {
    const frame = this.stack[this.stack.length - 1];
    if (!frame) throw new DatasetStructureError('data after the end of the dataset');
    if (data.length - at < 8) return 0;
    const enc = frame.encoding;
    const u16 = (o: number): number =>
      enc.littleEndian ? data.readUInt16LE(at + o) : data.readUInt16BE(at + o);
    const u32 = (o: number): number =>
      enc.littleEndian ? data.readUInt32LE(at + o) : data.readUInt32BE(at + o);
    const tag = ((u16(0) << 16) | u16(2)) >>> 0;

    if (frame.kind === 'items') {
      const length = u32(4);
      if (tag === SEQUENCE_DELIMITER) {
        this.stack.pop();
        return 8;
      }
      if (tag !== ITEM)
        throw new DatasetStructureError(`expected an item at offset ${offset}, found (${hex(tag)})`);
      if (length === UNDEFINED_LENGTH) {
        if (!frame.itemsAreDatasets)
          throw new DatasetStructureError(`undefined-length fragment at offset ${offset}`);
        this.push_({ kind: 'elements', encoding: enc, delimited: true, itemsAreDatasets: true });
      } else {
        this.skip = length;
      }
      return 8;
    }

    if (tag === ITEM_DELIMITER && frame.delimited) {
      this.stack.pop();
      return 8;
    }
    if (tag === ITEM || tag === ITEM_DELIMITER || tag === SEQUENCE_DELIMITER) {
      throw new DatasetStructureError(`unexpected delimiter tag at offset ${offset}`);
    }
    if (tag === PIXEL_DATA && this.stack.length === 1) this.pixelDataOffset ??= offset;
    let vr = '';
    let length: number;
    let headerLength: number;
    if (enc.explicitVr) {
      vr = data.toString('latin1', at + 4, at + 6);
      // A VR no edition defines yet is framed as UN, as PS3.5 6.2 has every future VR encoded.
      if (!isKnownVr(vr)) vr = 'UN';
      if (hasLongLength(vr)) {
        if (data.length - at < 12) return 0;
        length = u32(8);
        headerLength = 12;
      } else {
        length = u16(6);
        headerLength = 8;
      }
    } else {
      length = u32(4);
      headerLength = 8;
    }
    if (length === UNDEFINED_LENGTH) {
      if (enc.explicitVr && vr !== 'SQ' && vr !== 'UN' && vr !== 'OB' && vr !== 'OW') {
        throw new DatasetStructureError(`undefined length on a ${vr} element at offset ${offset}`);
      }
      // Undefined-length UN content is implicit little endian (PS3.5 6.2.2); OB/OW hold pixel fragments.
      const fragments = vr === 'OB' || vr === 'OW';
      this.push_({
        kind: 'items',
        encoding: vr === 'UN' ? IMPLICIT_LE : enc,
        delimited: true,
        itemsAreDatasets: !fragments,
      });
    } else {
      this.skip = length;
    }
    return headerLength;
  }

  private push_(frame: Frame): void {
    if (this.stack.length > MAX_DEPTH) throw new DatasetStructureError('sequences nested too deeply');
    this.stack.push(frame);
  }
}

function hex(tag: number): string {
  const s = tag.toString(16).toUpperCase().padStart(8, '0');
  return `${s.slice(0, 4)},${s.slice(4)}`;
}

/**
 * Checks that `dataset` (the bytes after the Part-10 meta group, already inflated for deflate) frames
 * correctly in the given transfer syntax. Throws {@link DatasetStructureError} naming the first problem.
 */
export function assertDatasetStructure(dataset: Buffer, transferSyntaxUid: string): void {
  const framer = new DatasetFramer(transferSyntaxUid);
  framer.push(dataset);
  framer.end();
}

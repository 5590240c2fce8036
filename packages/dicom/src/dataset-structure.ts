import { TransferSyntax } from './uids.js';

/*
 * dcmjs reads a dataset whose last value is cut short without complaint (it returns the bytes that are there),
 * so a truncated C-STORE would be stored as if it were whole. This walker checks only the framing of the
 * encoding (tags, lengths, items, delimiters) without decoding values, which is what detecting truncation needs.
 */

const UNDEFINED_LENGTH = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const LONG_LENGTH_VRS: ReadonlySet<string> = new Set([
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'SQ',
  'SV',
  'UC',
  'UN',
  'UR',
  'UT',
  'UV',
]);
const MAX_DEPTH = 32;

/** Raised when a dataset's encoding does not frame correctly (truncated, overlong lengths, bad delimiters). */
export class DatasetStructureError extends Error {
  override readonly name = 'DatasetStructureError';
}

interface Encoding {
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
}

/** Encoding of the dataset bytes for a transfer syntax (deflate is inflated by the caller). */
export function encodingOf(transferSyntaxUid: string): Encoding {
  switch (transferSyntaxUid) {
    case TransferSyntax.ImplicitVRLittleEndian:
      return { explicitVr: false, littleEndian: true };
    case TransferSyntax.ExplicitVRBigEndian:
      return { explicitVr: true, littleEndian: false };
    default:
      return { explicitVr: true, littleEndian: true };
  }
}

class Walker {
  constructor(
    private readonly buf: Buffer,
    private readonly enc: Encoding,
  ) {}

  private u16(at: number): number {
    return this.enc.littleEndian ? this.buf.readUInt16LE(at) : this.buf.readUInt16BE(at);
  }

  private u32(at: number): number {
    return this.enc.littleEndian ? this.buf.readUInt32LE(at) : this.buf.readUInt32BE(at);
  }

  private need(at: number, bytes: number, what: string): void {
    if (at + bytes > this.buf.length) {
      throw new DatasetStructureError(
        `${what} at offset ${at} needs ${bytes} bytes but only ${Math.max(0, this.buf.length - at)} remain`,
      );
    }
  }

  private tagAt(at: number): number {
    return ((this.u16(at) << 16) | this.u16(at + 2)) >>> 0;
  }

  /** Walks elements from `at` until `end`, or until `stopTag` when given; returns the offset after it. */
  walkElements(at: number, end: number, depth: number, stopTag?: number): number {
    if (depth > MAX_DEPTH) throw new DatasetStructureError('sequences nested too deeply');
    while (at < end) {
      this.need(at, 8, 'element header');
      const tag = this.tagAt(at);
      if (stopTag !== undefined && tag === stopTag) {
        return at + 8;
      }
      if (tag === ITEM || tag === ITEM_DELIMITER || tag === SEQUENCE_DELIMITER) {
        throw new DatasetStructureError(`unexpected delimiter tag at offset ${at}`);
      }
      let vr = '';
      let length: number;
      let valueAt: number;
      if (this.enc.explicitVr) {
        vr = this.buf.toString('latin1', at + 4, at + 6);
        if (LONG_LENGTH_VRS.has(vr)) {
          this.need(at, 12, 'element header');
          length = this.u32(at + 8);
          valueAt = at + 12;
        } else {
          length = this.u16(at + 6);
          valueAt = at + 8;
        }
      } else {
        length = this.u32(at + 4);
        valueAt = at + 8;
      }
      if (length === UNDEFINED_LENGTH) {
        // Undefined-length UN content is implicit little endian (PS3.5 6.2.2).
        const inner = vr === 'UN' ? new Walker(this.buf, { explicitVr: false, littleEndian: true }) : this;
        at = inner.walkItems(valueAt, end, depth + 1, vr === 'SQ' || vr === 'UN' || vr === '');
      } else {
        this.need(valueAt, length, `value of (${hex(tag)})`);
        at = valueAt + length;
      }
    }
    if (stopTag !== undefined) throw new DatasetStructureError('missing delimiter before end of data');
    return at;
  }

  /** Walks the items of an undefined-length sequence or encapsulated pixel data up to its delimiter. */
  private walkItems(at: number, end: number, depth: number, itemsAreDatasets: boolean): number {
    for (;;) {
      this.need(at, 8, 'item header');
      const tag = this.tagAt(at);
      const length = this.u32(at + 4);
      if (tag === SEQUENCE_DELIMITER) return at + 8;
      if (tag !== ITEM)
        throw new DatasetStructureError(`expected an item at offset ${at}, found (${hex(tag)})`);
      at += 8;
      if (length === UNDEFINED_LENGTH) {
        if (!itemsAreDatasets) throw new DatasetStructureError('undefined-length fragment');
        at = this.walkElements(at, end, depth + 1, ITEM_DELIMITER);
      } else {
        this.need(at, length, 'item value');
        if (itemsAreDatasets) this.walkElements(at, at + length, depth + 1);
        at += length;
      }
    }
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
  const walker = new Walker(dataset, encodingOf(transferSyntaxUid));
  try {
    walker.walkElements(0, dataset.length, 0);
  } catch (err) {
    if (err instanceof RangeError) throw new DatasetStructureError(`dataset ends early: ${err.message}`);
    throw err;
  }
}

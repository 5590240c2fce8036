import dcmjs from 'dcmjs';
import type { DicomJsonDataset } from 'dcmjs';
import { inflateRawSync } from 'node:zlib';
import { LONG_LENGTH_VRS } from './explicit-vr.js';
import { TransferSyntax } from './uids.js';

/** Length of the Part-10 preamble; `DICM` follows it. */
export const PREAMBLE_LENGTH = 128;
/** Where the file meta group starts (after the preamble and `DICM`). */
export const META_START = PREAMBLE_LENGTH + 4;

/** Implementation identity written into the meta header of every file the receiver stores. */
export const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1473.1';
export const IMPLEMENTATION_VERSION = 'DICOMFLOW_010';

/** Raised when bytes are not a Part-10 file or its meta group cannot be read. */
export class DicomParseError extends Error {
  override readonly name = 'DicomParseError';
}

export interface Part10PrefixInput {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  readonly sourceAeTitle?: string;
}

/**
 * Preamble, "DICM" and the file meta group for a dataset received over the network. Appending the dataset
 * bytes exactly as they arrived gives a valid Part-10 file without re-encoding anything.
 */
export function buildPart10Prefix(input: Part10PrefixInput): Buffer {
  const meta: DicomJsonDataset = {
    '00020001': { vr: 'OB', Value: [new Uint8Array([0, 1]).buffer] },
    '00020002': { vr: 'UI', Value: [input.sopClassUid] },
    '00020003': { vr: 'UI', Value: [input.sopInstanceUid] },
    '00020010': { vr: 'UI', Value: [input.transferSyntaxUid] },
    '00020012': { vr: 'UI', Value: [IMPLEMENTATION_CLASS_UID] },
    '00020013': { vr: 'SH', Value: [IMPLEMENTATION_VERSION] },
  };
  if (input.sourceAeTitle) meta['00020016'] = { vr: 'AE', Value: [input.sourceAeTitle] };
  const dict = new dcmjs.data.DicomDict(meta);
  dict.dict = {};
  const written = Buffer.from(dict.write());
  // dcmjs encodes the (empty) dataset too; for deflate that is a few bytes, so cut at the meta group's end.
  return written.subarray(0, datasetOffset(written));
}

interface MetaSummary {
  readonly datasetOffset: number;
  readonly transferSyntaxUid: string | undefined;
}

// dcmjs cannot read a meta group alone when the dataset is deflated (it tries to inflate nothing), so the
// group is walked here.
function readMeta(file: Buffer): MetaSummary {
  if (file.length < META_START + 12 || file.toString('latin1', PREAMBLE_LENGTH, META_START) !== 'DICM') {
    throw new DicomParseError('not a DICOM Part-10 file (no DICM prefix)');
  }
  const { datasetOffset, uids } = walkMetaGroup(file, () => new DicomParseError('meta group ends early'));
  return { datasetOffset, transferSyntaxUid: uids.get(0x0010) };
}

/** The file meta group as {@link walkMetaGroup} reads it. */
export interface MetaGroup {
  /** Where the dataset starts: after the last group-0002 element. */
  readonly datasetOffset: number;
  /** SOP class (0x0002), SOP instance (0x0003) and transfer syntax (0x0010) UIDs, by element number. */
  readonly uids: ReadonlyMap<number, string>;
}

const META_UID_ELEMENTS: ReadonlySet<number> = new Set([0x0002, 0x0003, 0x0010]);

/**
 * Walks the group-0002 elements (always explicit VR little endian) that follow `DICM` in `head`, the start
 * of a Part-10 file whose prefix the caller checked. Stops at the first element of another group or where
 * `head` ends between elements; throws `endsEarly()` when a value runs past the end of `head`.
 */
export function walkMetaGroup(head: Buffer, endsEarly: () => Error): MetaGroup {
  const uids = new Map<number, string>();
  let at = META_START;
  while (at + 8 <= head.length && head.readUInt16LE(at) === 0x0002) {
    const element = head.readUInt16LE(at + 2);
    const long = LONG_LENGTH_VRS.has(head.toString('latin1', at + 4, at + 6));
    if (long && at + 12 > head.length) break;
    const length = long ? head.readUInt32LE(at + 8) : head.readUInt16LE(at + 6);
    const valueAt = at + (long ? 12 : 8);
    if (valueAt + length > head.length) throw endsEarly();
    if (META_UID_ELEMENTS.has(element)) uids.set(element, withoutPadding(head, valueAt, valueAt + length));
    at = valueAt + length;
  }
  return { datasetOffset: at, uids };
}

/** The text of bytes `start` to `end` without trailing NUL and space padding (one pass, from the end). */
function withoutPadding(buf: Buffer, start: number, end: number): string {
  let last = end;
  while (last > start && (buf[last - 1] === 0 || buf[last - 1] === 0x20)) last -= 1;
  return buf.toString('latin1', start, last);
}

/** Offset of the first dataset byte in a Part-10 buffer (after the meta group). */
export function datasetOffset(file: Buffer): number {
  return readMeta(file).datasetOffset;
}

/** Transfer syntax UID from the meta group of a Part-10 buffer. */
export function metaTransferSyntax(file: Buffer): string {
  const { transferSyntaxUid } = readMeta(file);
  if (!transferSyntaxUid) throw new DicomParseError('meta group has no transfer syntax');
  return transferSyntaxUid;
}

/** Dataset bytes of a Part-10 buffer in their wire encoding (deflated datasets are inflated). */
export function datasetBytes(file: Buffer, transferSyntaxUid: string): Buffer {
  const body = file.subarray(datasetOffset(file));
  if (transferSyntaxUid !== TransferSyntax.DeflatedExplicitVRLittleEndian) return body;
  try {
    return inflateRawSync(body);
  } catch (err) {
    throw new DicomParseError(`deflated dataset cannot be inflated: ${(err as Error).message}`);
  }
}

/** A standalone ArrayBuffer view of a Buffer, as dcmjs wants. */
export function toArrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

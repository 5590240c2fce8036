import dcmjs from 'dcmjs';
import type { DicomJsonDataset, DicomJsonElement } from './model.js';
import { TransferSyntax } from './uids.js';

/*
 * Why not dcmjs here: the receiver reads the elements of every instance it is sent before it answers the
 * C-STORE, and dcmjs's reader costs ~0.1-0.4 ms and ~110 KB of garbage per instance (a stream object, a
 * value-representation object, a tag object and an accessor proxy per element, a copy of the buffer),
 * measured as the largest single cost of receiving a CT image. This reader walks the same bytes once and
 * builds the same DICOM JSON that `toNonBulkJson(dcmjs's dict)` gives, value for value: each rule below
 * repeats what dcmjs 0.51's value representations do (trimming, padding, splitting, number parsing).
 *
 * It only takes the cases where that equivalence is plain: text in ASCII, a character set that reads
 * ASCII as ASCII, value representations whose decoding is listed below, well-formed framing. Anything
 * else (UN, SV/UV/OL/OV, undefined-length non-sequence values, other character sets, non-ASCII text,
 * odd lengths, framing errors) returns undefined and the caller asks dcmjs, which stays the reference:
 * the tests compare both on every transfer syntax.
 */

const UNDEFINED_LENGTH = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const PIXEL_DATA = 0x7fe00010;
const SPECIFIC_CHARACTER_SET = 0x00080005;
const MAX_DEPTH = 16;
const BACKSLASH = '\\';

/** Value representations with a 32-bit length in explicit VR, as dcmjs reads them. */
const LONG_VRS: ReadonlySet<string> = new Set(['OB', 'OW', 'OF', 'OD', 'SQ', 'UC', 'UR', 'UT']);
const BULK_VRS: ReadonlySet<string> = new Set(['OB', 'OW', 'OF', 'OD']);
const BINARY_SIZES: Readonly<Record<string, number>> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, AT: 4 };
const TEXT_VRS: ReadonlySet<string> = new Set([
  'AE',
  'AS',
  'CS',
  'DA',
  'DS',
  'DT',
  'IS',
  'LO',
  'LT',
  'PN',
  'SH',
  'ST',
  'TM',
  'UC',
  'UI',
  'UR',
  'UT',
]);
/**
 * dcmjs drops a trailing pad from the last of several values only for these: a maximum length and a
 * non-zero pad byte (so never for UI, padded with NUL). The length itself plays no part in the rule.
 */
const PAD_DROP_LENGTH: Readonly<Record<string, number>> = {
  AE: 16,
  AS: 4,
  CS: 16,
  DA: 8,
  DS: 16,
  DT: 26,
  IS: 12,
  LO: 64,
  SH: 16,
  ST: 1024,
  TM: 16,
};
/** Character sets under which ASCII bytes read as themselves, in dcmjs's normalised spelling. */
const ASCII_COMPATIBLE_CHARSETS: ReadonlySet<string> = new Set([
  '',
  'iso-ir-6',
  'iso-ir-100',
  'iso-ir-192',
  'iso-2022-ir-6',
  'iso-2022-ir-100',
]);

/** Explicit VRs by their two bytes, so reading one allocates nothing. */
const VR_BY_CODE: ReadonlyMap<number, string> = new Map(
  [...LONG_VRS, ...Object.keys(BINARY_SIZES), ...TEXT_VRS].map((vr) => [
    (vr.charCodeAt(0) << 8) | vr.charCodeAt(1),
    vr,
  ]),
);

interface Reader {
  readonly buf: Buffer;
  readonly little: boolean;
  readonly implicit: boolean;
}

/** Signals a case this reader leaves to dcmjs. */
class NotPlain extends Error {}

const NOT_PLAIN = new NotPlain();

/**
 * The top-level non-bulk elements of a dataset up to Pixel Data, in the DICOM JSON model, exactly as
 * `toNonBulkJson` of dcmjs's reading; undefined when the dataset is outside what this reader handles
 * (the caller then uses dcmjs). `dataset`: the bytes after the meta group, inflated for deflate.
 */
export function readPlainElements(dataset: Buffer, transferSyntaxUid: string): DicomJsonDataset | undefined {
  const reader: Reader = {
    buf: dataset,
    little: transferSyntaxUid !== TransferSyntax.ExplicitVRBigEndian,
    implicit: transferSyntaxUid === TransferSyntax.ImplicitVRLittleEndian,
  };
  try {
    return readElements(reader, 0, dataset.length, 0).dataset;
  } catch (err) {
    if (err === NOT_PLAIN) return undefined;
    // Bounds are checked before every read, so anything else is a bug worth seeing, not a fallback.
    throw err;
  }
}

/**
 * Elements from `start` until `end` (a defined length) or an item delimiter (`delimited`). At depth 0 the
 * walk stops at Pixel Data, as dcmjs's `untilTag` does; nested items are read whole, as dcmjs does.
 */
function readElements(
  r: Reader,
  start: number,
  end: number,
  depth: number,
  delimited = false,
): { dataset: DicomJsonDataset; next: number } {
  const out: DicomJsonDataset = {};
  let at = start;
  while (at < end) {
    if (at + 8 > end) throw NOT_PLAIN;
    const group = u16(r, at);
    const tag = ((group << 16) | u16(r, at + 2)) >>> 0;
    if (depth === 0 && tag === PIXEL_DATA) break;
    if (group === 0xfffe) {
      if (delimited && tag === ITEM_DELIMITER) return { dataset: out, next: at + 8 };
      throw NOT_PLAIN;
    }
    let vr: string;
    let length: number;
    let valueAt: number;
    if (r.implicit) {
      vr = implicitVr(tag);
      length = u32(r, at + 4);
      valueAt = at + 8;
    } else {
      vr = VR_BY_CODE.get(r.buf.readUInt16BE(at + 4)) ?? '';
      if (vr === '') throw NOT_PLAIN;
      if (LONG_VRS.has(vr)) {
        if (at + 12 > end) throw NOT_PLAIN;
        length = u32(r, at + 8);
        valueAt = at + 12;
      } else {
        length = u16(r, at + 6);
        valueAt = at + 8;
      }
    }
    let element: DicomJsonElement;
    if (vr === 'SQ') {
      const sq = readSequence(r, valueAt, length, end, depth);
      element = { vr, Value: sq.items };
      at = sq.next;
    } else {
      if (length === UNDEFINED_LENGTH || valueAt + length > end) throw NOT_PLAIN;
      element = readValue(r, vr, valueAt, length);
      at = valueAt + length;
    }
    if (tag === SPECIFIC_CHARACTER_SET) element = characterSet(element);
    out[tagKey(tag)] = element;
  }
  if (delimited) throw NOT_PLAIN; // ran out of bytes before the item delimiter
  return { dataset: out, next: at };
}

/** Items of a sequence; dcmjs leaves out items without bytes. */
function readSequence(
  r: Reader,
  start: number,
  length: number,
  limit: number,
  depth: number,
): { items: DicomJsonDataset[]; next: number } {
  if (depth + 1 > MAX_DEPTH) throw NOT_PLAIN;
  const undefinedLength = length === UNDEFINED_LENGTH;
  const end = undefinedLength ? limit : start + length;
  if (end > limit) throw NOT_PLAIN;
  const items: DicomJsonDataset[] = [];
  let at = start;
  for (;;) {
    if (!undefinedLength && at === end) return { items, next: at };
    if (at + 8 > end) throw NOT_PLAIN;
    const tag = ((u16(r, at) << 16) | u16(r, at + 2)) >>> 0;
    const itemLength = u32(r, at + 4);
    if (tag === SEQUENCE_DELIMITER && undefinedLength) return { items, next: at + 8 };
    if (tag !== ITEM) throw NOT_PLAIN;
    if (itemLength === UNDEFINED_LENGTH) {
      const item = readElements(r, at + 8, end, depth + 1, true);
      if (item.next - 8 > at + 8) items.push(item.dataset);
      at = item.next;
    } else {
      const itemEnd = at + 8 + itemLength;
      if (itemEnd > end) throw NOT_PLAIN;
      const item = readElements(r, at + 8, itemEnd, depth + 1);
      if (itemLength > 0) items.push(item.dataset);
      at = itemEnd;
    }
  }
}

function readValue(r: Reader, vr: string, at: number, length: number): DicomJsonElement {
  if (BULK_VRS.has(vr)) return { vr };
  const size = BINARY_SIZES[vr];
  if (size !== undefined) return { vr, Value: readBinary(r, vr, size, at, length) };
  if (!TEXT_VRS.has(vr)) throw NOT_PLAIN;
  return { vr, Value: readText(vr, asciiText(r.buf, at, length)) };
}

/** dcmjs gives the default (0) for an empty binary value, and one value per `size` bytes otherwise. */
function readBinary(r: Reader, vr: string, size: number, at: number, length: number): number[] {
  if (length === 0 && vr === 'AT') throw NOT_PLAIN; // dcmjs has no default for AT
  if (length === 0) return [0];
  if (length % size !== 0) throw NOT_PLAIN;
  const values: number[] = [];
  for (let p = at; p < at + length; p += size) {
    switch (vr) {
      case 'US':
        values.push(u16(r, p));
        break;
      case 'SS':
        values.push(r.little ? r.buf.readInt16LE(p) : r.buf.readInt16BE(p));
        break;
      case 'UL':
        values.push(u32(r, p));
        break;
      case 'SL':
        values.push(r.little ? r.buf.readInt32LE(p) : r.buf.readInt32BE(p));
        break;
      case 'FL':
        values.push(r.little ? r.buf.readFloatLE(p) : r.buf.readFloatBE(p));
        break;
      case 'FD':
        values.push(r.little ? r.buf.readDoubleLE(p) : r.buf.readDoubleBE(p));
        break;
      default: // AT: group and element, as one number
        values.push(((u16(r, p) << 16) | u16(r, p + 2)) >>> 0);
    }
  }
  return values;
}

/** The value's bytes as a string, when they are all ASCII (no escape: ISO 2022 switches start with one). */
function asciiText(buf: Buffer, at: number, length: number): string {
  for (let p = at; p < at + length; p++) {
    const byte = buf[p] ?? 0x80;
    if (byte >= 0x80 || byte === 0x1b) throw NOT_PLAIN;
  }
  return buf.toString('latin1', at, at + length);
}

/** The values dcmjs 0.51 reads from a text value (see its ValueRepresentation classes and `_readTag`). */
function readText(vr: string, raw: string): unknown[] {
  switch (vr) {
    case 'CS':
      return dropPad(vr, raw.split(BACKSLASH)).map((s) => s.trim());
    case 'DS':
    case 'IS':
      return dropPad(vr, raw.split(BACKSLASH)).map(formatNumber);
    case 'UI': {
      const text = raw.endsWith('\0') ? raw.slice(0, -1) : raw;
      const values = text.includes(BACKSLASH) ? text.split(BACKSLASH) : [text];
      return values.map((s) => s.replace(/[^0-9.]/g, ''));
    }
    case 'PN':
      return personNames(raw.endsWith(' ') ? raw.slice(0, -1) : raw);
    case 'LT':
      return [rtrim(raw)];
    case 'AE':
    case 'LO':
    case 'SH':
      return dropPad(vr, raw.trim().split(BACKSLASH));
    case 'ST':
    case 'TM':
    case 'UC':
    case 'UT':
      return dropPad(vr, rtrim(raw).split(BACKSLASH));
    default: // AS, DA, DT, UR: taken as they are
      return dropPad(vr, raw.split(BACKSLASH));
  }
}

/** dcmjs's `dropPadByte`: the last of several values loses one trailing pad when its length is odd. */
function dropPad(vr: string, values: string[]): string[] {
  if (values.length < 2 || PAD_DROP_LENGTH[vr] === undefined) return values;
  const last = values[values.length - 1] ?? '';
  if (last.length % 2 !== 0 && last.endsWith(' ')) values[values.length - 1] = last.slice(0, -1);
  return values;
}

function formatNumber(text: string): number | null {
  const cleaned = text.trim().replace(/[^0-9.\\\-+e]/gi, '');
  return cleaned === '' ? null : Number(cleaned);
}

function rtrim(text: string): string {
  return text.replace(/\s*$/g, '');
}

/** dcmjs's person-name objects: empty values dropped, components by `=`, empty components left out. */
function personNames(text: string): Array<Record<string, string>> {
  return text
    .split(BACKSLASH)
    .filter(Boolean)
    .map((value) => {
      const [alphabetic, ideographic, phonetic] = value.split('=');
      return {
        ...(alphabetic ? { Alphabetic: alphabetic } : {}),
        ...(ideographic ? { Ideographic: ideographic } : {}),
        ...(phonetic ? { Phonetic: phonetic } : {}),
      };
    });
}

/** dcmjs reads everything after Specific Character Set as Unicode and says so by rewriting it. */
function characterSet(element: DicomJsonElement): DicomJsonElement {
  const values = element.Value ?? [];
  if (values.length !== 1) throw NOT_PLAIN; // dcmjs refuses several character sets
  const coding = String(values[0]).replace(/[_ ]/g, '-').toLowerCase();
  if (!ASCII_COMPATIBLE_CHARSETS.has(coding)) throw NOT_PLAIN;
  return { vr: element.vr, Value: ['ISO_IR 192'] };
}

const implicitVrs = new Map<number, string>();

/** The dictionary VR dcmjs uses for an implicit-VR element; tags it does not know are left to dcmjs. */
function implicitVr(tag: number): string {
  let vr = implicitVrs.get(tag);
  if (vr === undefined) {
    const hex = tagKey(tag);
    const entry = dcmjs.data.DicomMetaDictionary.dictionary[`(${hex.slice(0, 4)},${hex.slice(4)})`];
    vr = entry?.vr === 'xs' ? 'US' : entry?.vr === 'ox' ? 'OW' : (entry?.vr ?? '');
    implicitVrs.set(tag, vr);
  }
  if (vr === '') throw NOT_PLAIN;
  return vr;
}

const tagKeys = new Map<number, string>();

/** dcmjs's key for a tag (`0020000D`); the few hundred tags a receiver sees are kept. */
function tagKey(tag: number): string {
  let key = tagKeys.get(tag);
  if (key === undefined) {
    key = tag.toString(16).toUpperCase().padStart(8, '0');
    if (tagKeys.size < 10_000) tagKeys.set(tag, key);
  }
  return key;
}

function u16(r: Reader, at: number): number {
  return r.little ? r.buf.readUInt16LE(at) : r.buf.readUInt16BE(at);
}

function u32(r: Reader, at: number): number {
  return r.little ? r.buf.readUInt32LE(at) : r.buf.readUInt32BE(at);
}

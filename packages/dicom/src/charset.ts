import { TextDecoder } from 'node:util';

/*
 * Text decoding per PS3.5 6.1 and PS3.3 C.12.1.1.2: a Specific Character Set (0008,0005) names one
 * character set, or, with "ISO 2022" terms, the sets that escape sequences may switch to. Decoding is
 * needed only to match and index text; it never decides whether an instance is stored. Every step below is
 * one pass over the value's bytes (runs of one set are decoded in one call), so its cost is linear.
 */

const ESC = 0x1b;
const BACKSLASH = 0x5c;
const CARET = 0x5e;
const EQUALS = 0x3d;
const LF = 0x0a;
const FF = 0x0c;
const CR = 0x0d;
const TAB = 0x09;

/** The code elements a G0 (bytes below 0x80) or G1 (bytes from 0x80) designation can hold. */
type G0 = 'ascii' | 'jis-x0208' | 'jis-x0212';
type G1 =
  | { readonly kind: 'none' }
  | { readonly kind: 'single'; readonly decode: (bytes: Uint8Array) => string }
  | { readonly kind: 'katakana' }
  | { readonly kind: 'double'; readonly label: 'euc-kr' | 'gbk' };

interface Term {
  readonly g0: G0;
  readonly g1: G1;
}

const NO_G1: G1 = { kind: 'none' };
const decoders = new Map<string, TextDecoder>();

function textDecoder(label: string): TextDecoder {
  let decoder = decoders.get(label);
  if (decoder === undefined) {
    decoder = new TextDecoder(label, { fatal: true });
    decoders.set(label, decoder);
  }
  return decoder;
}

function singleByte(label: string): G1 {
  // ISO 8859-1 is decoded exactly (WHATWG's "latin1" label means windows-1252); the other labels agree
  // with their ISO 8859 part from 0xA0 up, the only range DICOM text uses.
  const decode =
    label === 'latin1'
      ? (bytes: Uint8Array): string =>
          Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1')
      : (bytes: Uint8Array): string => textDecoder(label).decode(bytes);
  return { kind: 'single', decode };
}

/** Defined terms, by their name with spaces and underscores removed (so "ISO_IR 100" and "ISO 2022 IR 100" differ). */
const SINGLE_BYTE_LABELS: Readonly<Record<string, string>> = {
  '100': 'latin1',
  '101': 'iso-8859-2',
  '109': 'iso-8859-3',
  '110': 'iso-8859-4',
  '144': 'iso-8859-5',
  '127': 'iso-8859-6',
  '126': 'iso-8859-7',
  '138': 'iso-8859-8',
  '148': 'iso-8859-9',
  '203': 'iso-8859-15',
  '166': 'tis-620',
};

/** The code elements of one ISO 2022 term, or of a single-set term read the same way (IR 6, 13, 8859). */
function isoTerm(ir: string): Term | undefined {
  if (ir === '6') return { g0: 'ascii', g1: NO_G1 };
  if (ir === '13') return { g0: 'ascii', g1: { kind: 'katakana' } };
  if (ir === '87') return { g0: 'jis-x0208', g1: NO_G1 };
  if (ir === '159') return { g0: 'jis-x0212', g1: NO_G1 };
  if (ir === '149') return { g0: 'ascii', g1: { kind: 'double', label: 'euc-kr' } };
  if (ir === '58') return { g0: 'ascii', g1: { kind: 'double', label: 'gbk' } };
  const label = SINGLE_BYTE_LABELS[ir];
  return label === undefined ? undefined : { g0: 'ascii', g1: singleByte(label) };
}

/** How to read the bytes of text values under one Specific Character Set. */
export interface TextDecoding {
  /** Decodes `bytes`; `ok` is false when they are not valid in the character set (the text is then Latin-1). */
  decode(bytes: Uint8Array, vr: string): { readonly text: string; readonly ok: boolean };
}

/** The default repertoire. Bytes from 0x80 are outside it; they are read as Latin-1, as most readers do. */
export const DEFAULT_DECODING: TextDecoding = {
  decode: (bytes) => ({ text: latin1(bytes), ok: true }),
};

/**
 * The decoding for the values of Specific Character Set (0008,0005): one term (`ISO_IR 100`, `ISO_IR 192`,
 * `GB18030`, ...) or several ISO 2022 terms (`\ISO 2022 IR 87`, `ISO 2022 IR 13\ISO 2022 IR 87`). An
 * unknown term gives a decoding under which every non-ASCII value is undecodable.
 */
export function textDecodingFor(terms: readonly string[]): TextDecoding {
  const names = terms.map((term) => term.trim().toUpperCase());
  const first = names[0] ?? '';
  if (names.length <= 1 && !first.startsWith('ISO 2022')) return singleTermDecoding(first);
  const initial = isoTerm(first === '' ? '6' : first.replace(/^ISO 2022 IR /, ''));
  if (initial === undefined || !names.every((name) => name === '' || /^ISO 2022 IR \d+$/.test(name))) {
    return UNKNOWN_DECODING;
  }
  return { decode: (bytes, vr) => decodeIso2022(bytes, vr, initial) };
}

const UNKNOWN_DECODING: TextDecoding = {
  decode: (bytes) => ({ text: latin1(bytes), ok: isAscii(bytes) }),
};

function singleTermDecoding(name: string): TextDecoding {
  switch (name) {
    case '':
    case 'ISO_IR 6':
      return DEFAULT_DECODING;
    case 'ISO_IR 192':
      return whole('utf-8');
    case 'GB18030':
      return whole('gb18030');
    case 'GBK':
      return whole('gbk');
    case 'ISO_IR 13': {
      const term = isoTerm('13');
      return term ? { decode: (bytes, vr) => decodeIso2022(bytes, vr, term) } : UNKNOWN_DECODING;
    }
    default: {
      const label = name.startsWith('ISO_IR ') ? SINGLE_BYTE_LABELS[name.slice('ISO_IR '.length)] : undefined;
      return label === undefined ? UNKNOWN_DECODING : whole(label);
    }
  }
}

/** A character set without code extensions: the whole value in one call. */
function whole(label: string): TextDecoding {
  const g1 = singleByte(label);
  const decode = g1.kind === 'single' ? g1.decode : latin1;
  return {
    decode: (bytes) => {
      try {
        return { text: decode(bytes), ok: true };
      } catch {
        return { text: latin1(bytes), ok: false };
      }
    },
  };
}

/** Delimiters after which the initial code elements are active again (PS3.5 6.1.2.5.3). */
function resetsAt(byte: number, vr: string): boolean {
  if (byte === BACKSLASH || byte === CR || byte === LF || byte === FF || byte === TAB) return true;
  return vr === 'PN' && (byte === CARET || byte === EQUALS);
}

/**
 * ISO 2022 decoding: escape sequences switch G0 and G1; two-byte sets are decoded through their EUC form
 * (JIS X 0208/0212 as EUC-JP, KS X 1001 as EUC-KR, GB 2312 as GBK), each run of one set in one call.
 */
function decodeIso2022(bytes: Uint8Array, vr: string, initial: Term): { text: string; ok: boolean } {
  const parts: string[] = [];
  let ok = true;
  let g0 = initial.g0;
  let g1 = initial.g1;
  let at = 0;
  while (at < bytes.length) {
    const byte = bytes[at] ?? 0;
    if (byte === ESC) {
      const designation = readEscape(bytes, at);
      if (designation === undefined) {
        ok = false;
        parts.push(latin1(bytes.subarray(at, at + 1)));
        at += 1;
        continue;
      }
      if (designation.g0 !== undefined) g0 = designation.g0;
      if (designation.g1 !== undefined) g1 = designation.g1;
      at += designation.length;
      continue;
    }
    if (byte >= 0x80) {
      const end = runEnd(bytes, at, (b) => b >= 0x80);
      const run = decodeG1(bytes.subarray(at, end), g1);
      ok &&= run.ok;
      parts.push(run.text);
      at = end;
      continue;
    }
    if (g0 !== 'ascii' && byte >= 0x21 && byte <= 0x7e) {
      const end = runEnd(bytes, at, (b) => b >= 0x21 && b <= 0x7e);
      const run = decodeTwoByteG0(bytes.subarray(at, end), g0);
      ok &&= run.ok;
      parts.push(run.text);
      at = end;
      continue;
    }
    // A run of single-byte G0 (ASCII) up to the next escape, high byte or reset delimiter.
    let end = at;
    while (end < bytes.length) {
      const b = bytes[end] ?? 0;
      if (b === ESC || b >= 0x80) break;
      if (g0 !== 'ascii' && b >= 0x21 && b <= 0x7e) break;
      end += 1;
      if (resetsAt(b, vr)) {
        g0 = initial.g0;
        g1 = initial.g1;
        break;
      }
    }
    parts.push(latin1(bytes.subarray(at, end)));
    at = end;
  }
  return { text: parts.join(''), ok };
}

function runEnd(bytes: Uint8Array, start: number, inRun: (byte: number) => boolean): number {
  let end = start;
  while (end < bytes.length && inRun(bytes[end] ?? 0)) end += 1;
  return end;
}

function decodeG1(run: Uint8Array, g1: G1): { text: string; ok: boolean } {
  switch (g1.kind) {
    case 'none':
      return { text: latin1(run), ok: false };
    case 'katakana': {
      // JIS X 0201 katakana 0xA1-0xDF are the half-width forms U+FF61-U+FF9F.
      let text = '';
      let ok = true;
      const chars: number[] = [];
      for (const b of run) {
        if (b >= 0xa1 && b <= 0xdf) chars.push(0xff61 + (b - 0xa1));
        else {
          chars.push(b);
          ok = false;
        }
        if (chars.length === 4096) text += String.fromCharCode(...chars.splice(0));
      }
      return { text: text + String.fromCharCode(...chars), ok };
    }
    case 'single':
    case 'double':
      try {
        return { text: g1.kind === 'single' ? g1.decode(run) : textDecoder(g1.label).decode(run), ok: true };
      } catch {
        return { text: latin1(run), ok: false };
      }
  }
}

function decodeTwoByteG0(run: Uint8Array, g0: 'jis-x0208' | 'jis-x0212'): { text: string; ok: boolean } {
  if (run.length % 2 !== 0) return { text: latin1(run), ok: false };
  const prefix = g0 === 'jis-x0212' ? 1 : 0;
  const euc = new Uint8Array((run.length / 2) * (2 + prefix));
  let out = 0;
  for (let i = 0; i < run.length; i += 2) {
    if (prefix) euc[out++] = 0x8f;
    euc[out++] = (run[i] ?? 0) | 0x80;
    euc[out++] = (run[i + 1] ?? 0) | 0x80;
  }
  try {
    return { text: textDecoder('euc-jp').decode(euc), ok: true };
  } catch {
    return { text: latin1(run), ok: false };
  }
}

interface Designation {
  readonly length: number;
  readonly g0?: G0;
  readonly g1?: G1;
}

const SINGLE_BYTE_G1_FINALS: Readonly<Record<string, string>> = {
  A: '100',
  B: '101',
  C: '109',
  D: '110',
  L: '144',
  G: '127',
  F: '126',
  H: '138',
  M: '148',
  T: '166',
  b: '203',
};

/** The escape sequence at `at` (PS3.3 Tables C.12-3 and C.12-4), or undefined when it is not one of them. */
function readEscape(bytes: Uint8Array, at: number): Designation | undefined {
  const seq = latin1(bytes.subarray(at + 1, at + 4));
  if (seq.startsWith('(B') || seq.startsWith('(J')) return { length: 3, g0: 'ascii' };
  if (seq.startsWith(')I')) return { length: 3, g1: { kind: 'katakana' } };
  if (seq.startsWith('$B') || seq.startsWith('$@')) return { length: 3, g0: 'jis-x0208' };
  if (seq === '$(D') return { length: 4, g0: 'jis-x0212' };
  if (seq === '$)C') return { length: 4, g1: { kind: 'double', label: 'euc-kr' } };
  if (seq === '$)A') return { length: 4, g1: { kind: 'double', label: 'gbk' } };
  if (seq.startsWith('-')) {
    const ir = SINGLE_BYTE_G1_FINALS[seq.charAt(1)];
    const term = ir === undefined ? undefined : isoTerm(ir);
    if (term) return { length: 3, g1: term.g1 };
  }
  return undefined;
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

function isAscii(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b >= 0x80) return false;
  return true;
}

/** Command group elements (PS3.7 E.1) by the keyword the library names them with: tag element and VR. */
const COMMAND_ELEMENTS: Readonly<Record<string, readonly [element: number, vr: string]>> = {
  AffectedSOPClassUID: [0x0002, 'UI'],
  RequestedSOPClassUID: [0x0003, 'UI'],
  CommandField: [0x0100, 'US'],
  MessageID: [0x0110, 'US'],
  MessageIDBeingRespondedTo: [0x0120, 'US'],
  MoveDestination: [0x0600, 'AE'],
  Priority: [0x0700, 'US'],
  CommandDataSetType: [0x0800, 'US'],
  Status: [0x0900, 'US'],
  ErrorComment: [0x0902, 'LO'],
  ErrorID: [0x0903, 'US'],
  AffectedSOPInstanceUID: [0x1000, 'UI'],
  RequestedSOPInstanceUID: [0x1001, 'UI'],
  EventTypeID: [0x1002, 'US'],
  ActionTypeID: [0x1008, 'US'],
  NumberOfRemainingSuboperations: [0x1020, 'US'],
  NumberOfCompletedSuboperations: [0x1021, 'US'],
  NumberOfFailedSuboperations: [0x1022, 'US'],
  NumberOfWarningSuboperations: [0x1023, 'US'],
  MoveOriginatorApplicationEntityTitle: [0x1030, 'AE'],
  MoveOriginatorMessageID: [0x1031, 'US'],
};

const BY_ELEMENT = new Map(
  Object.entries(COMMAND_ELEMENTS).map(([keyword, [element, vr]]) => [element, { keyword, vr }]),
);

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}

/** Value bytes of one element, padded to even length; undefined for a value this encoder does not write. */
function valueBytes(vr: string, value: unknown): Buffer | undefined {
  const values: unknown[] = Array.isArray(value) ? value : [value];
  if (values.length === 0) return undefined;
  if (vr === 'US') {
    if (!values.every((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff))
      return undefined;
    const out = Buffer.alloc(values.length * 2);
    values.forEach((v, i) => out.writeUInt16LE(v as number, i * 2));
    return out;
  }
  if (!values.every((v) => typeof v === 'string' && v.length > 0)) return undefined;
  const text = values.join('\\');
  // Only plain ASCII is written here; anything else is left to the library's character-set handling.
  if (!/^[\x20-\x7e]*$/.test(text)) return undefined;
  const padding = text.length % 2 === 0 ? '' : vr === 'UI' ? '\0' : ' ';
  return Buffer.from(text + padding, 'latin1');
}

/**
 * The command set of a DIMSE message in implicit VR little endian (PS3.7 6.3.1), Command Group Length
 * first, elements in tag order: the bytes dcmjs-dimse's `getDenaturalizedCommandDataset()` produces for
 * the same elements. That one goes through dcmjs, which allocates two zero-filled 256 KiB buffers per
 * call, i.e. per C-STORE response; this allocates only the result.
 *
 * `elements` is the library's (naturalized) command dataset. Returns undefined when it holds an element
 * or value this encoder does not handle, so the caller can fall back to the library.
 */
export function encodeCommandSet(elements: Readonly<Record<string, unknown>>): Buffer | undefined {
  const encoded: { element: number; bytes: Buffer }[] = [];
  for (const [keyword, value] of Object.entries(elements)) {
    if (value === undefined) continue; // dcmjs leaves unset elements out too (e.g. no ErrorComment)
    if (keyword === '_vrMap' && isEmptyObject(value)) continue; // dcmjs's (empty) VR overrides
    const known = COMMAND_ELEMENTS[keyword];
    if (!known) return undefined;
    const [element, vr] = known;
    const bytes = valueBytes(vr, value);
    if (!bytes) return undefined;
    encoded.push({ element, bytes });
  }
  encoded.sort((a, b) => a.element - b.element);
  const groupLength = encoded.reduce((sum, e) => sum + 8 + e.bytes.length, 0);
  const out = Buffer.alloc(12 + groupLength);
  out.writeUInt32LE(4, 4); // (0000,0000) UL, length 4
  out.writeUInt32LE(groupLength, 8);
  let at = 12;
  for (const { element, bytes } of encoded) {
    out.writeUInt16LE(0x0000, at);
    out.writeUInt16LE(element, at + 2);
    out.writeUInt32LE(bytes.length, at + 4);
    bytes.copy(out, at + 8);
    at += 8 + bytes.length;
  }
  return out;
}

/** Longest command set accepted: a real one is about 200 bytes; the bound keeps every step on it small. */
export const MAX_COMMAND_SET_LENGTH = 64 * 1024;
/** CommandDataSetType (0000,0800) value meaning "no dataset follows" (PS3.7 E.1). */
export const NO_DATASET = 0x0101;

const SPACE = 0x20;
const NUL = 0x00;
const BACKSLASH = 0x5c;

/** Index just past the last byte of `value` that is not padding (spaces, and NULs when `nulToo`). */
function endOfText(value: Buffer, nulToo: boolean): number {
  let end = value.length;
  while (end > 0) {
    const c = value[end - 1];
    if (c !== SPACE && !(nulToo && c === NUL)) break;
    end -= 1;
  }
  return end;
}

/**
 * The value of one element, or undefined for one this reader does not take: a US that is not one value, a
 * UID with characters other than digits and dots, text with control characters or a backslash (several
 * values). Padding is trimmed. One pass over the value, no regular expressions: the old path went through
 * dcmjs, whose end-trim regex is quadratic (a 160k-space value took 21 s).
 */
function decodeValue(vr: string, value: Buffer): string | number | undefined {
  if (vr === 'US') return value.length === 2 ? value.readUInt16LE(0) : undefined;
  if (vr === 'UI') {
    const end = endOfText(value, true);
    if (end === 0) return undefined;
    for (let i = 0; i < end; i++) {
      const c = value[i] ?? 0;
      if (c !== 0x2e && (c < 0x30 || c > 0x39)) return undefined;
    }
    return value.toString('latin1', 0, end);
  }
  const end = endOfText(value, false);
  let start = 0;
  while (start < end && value[start] === SPACE) start += 1;
  if (start === end) return undefined;
  for (let i = start; i < end; i++) {
    const c = value[i] ?? 0;
    if (c < SPACE || c > 0x7e || c === BACKSLASH) return undefined;
  }
  return value.toString('latin1', start, end);
}

/**
 * Reads a command set (implicit VR little endian, group 0000) into the naturalized elements dcmjs-dimse's
 * `new Dataset(bytes)` produces for it (keyword keys, numbers and trimmed strings, the empty `_vrMap`
 * dcmjs adds), in one linear pass. It is the receiver's only reader of command sets: dcmjs never sees
 * them. Elements of group 0000 it does not know (retired ones some old senders still add) are skipped.
 * Returns undefined for anything it cannot read: a set longer than {@link MAX_COMMAND_SET_LENGTH}, an
 * element outside group 0000, cut short, empty, repeated, or a value {@link decodeValue} refuses.
 */
export function decodeCommandSet(bytes: Buffer): Record<string, unknown> | undefined {
  if (bytes.length > MAX_COMMAND_SET_LENGTH) return undefined;
  const elements: Record<string, unknown> = { _vrMap: {} };
  let at = 0;
  while (at < bytes.length) {
    if (at + 8 > bytes.length || bytes.readUInt16LE(at) !== 0x0000) return undefined;
    const element = bytes.readUInt16LE(at + 2);
    const length = bytes.readUInt32LE(at + 4);
    const end = at + 8 + length;
    if (length === 0 || end > bytes.length) return undefined;
    const value = bytes.subarray(at + 8, end);
    at = end;
    if (element === 0x0000) {
      if (length !== 4 || 'CommandGroupLength' in elements) return undefined;
      elements.CommandGroupLength = value.readUInt32LE(0);
      continue;
    }
    const known = BY_ELEMENT.get(element);
    if (!known) continue;
    const decoded = decodeValue(known.vr, value);
    if (decoded === undefined || known.keyword in elements) return undefined;
    elements[known.keyword] = decoded;
  }
  return elements;
}

/** What a response needs from a request, read from a command set {@link decodeCommandSet} refused. */
export interface CommandEssentials {
  readonly commandField: number;
  readonly messageId: number;
  readonly datasetFollows: boolean;
}

/**
 * CommandField, MessageID and whether a dataset follows, from a command set whose elements frame
 * (each within the bytes) even if some value cannot be read; undefined when they cannot all be found,
 * in which case no response can be formed. Linear, like {@link decodeCommandSet}.
 */
export function commandEssentials(bytes: Buffer): CommandEssentials | undefined {
  if (bytes.length > MAX_COMMAND_SET_LENGTH) return undefined;
  const found = new Map<number, number>();
  let at = 0;
  while (at < bytes.length) {
    if (at + 8 > bytes.length) return undefined;
    const group = bytes.readUInt16LE(at);
    const element = bytes.readUInt16LE(at + 2);
    const length = bytes.readUInt32LE(at + 4);
    if (at + 8 + length > bytes.length) return undefined;
    if (group === 0x0000 && length === 2) found.set(element, bytes.readUInt16LE(at + 8));
    at += 8 + length;
  }
  const commandField = found.get(0x0100);
  const messageId = found.get(0x0110);
  const dataSetType = found.get(0x0800);
  if (commandField === undefined || messageId === undefined || dataSetType === undefined) return undefined;
  return { commandField, messageId, datasetFollows: dataSetType !== NO_DATASET };
}

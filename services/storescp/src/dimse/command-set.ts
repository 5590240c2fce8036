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

/** A UID padded to even length with at most one NUL. */
const CLEAN_UID = /^[0-9.]+\0?$/;
/** Text without backslash, control characters or leading space, padded with at most one space. */
const CLEAN_TEXT = /^[\x21-\x5b\x5d-\x7e]([\x20-\x5b\x5d-\x7e]*[\x21-\x5b\x5d-\x7e])? ?$/;

/** The value dcmjs reads for one element, for the plain encodings it reads unchanged; else undefined. */
function decodeValue(vr: string, value: Buffer): string | number | undefined {
  if (vr === 'US') return value.length === 2 ? value.readUInt16LE(0) : undefined;
  const text = value.toString('latin1');
  if (vr === 'UI') return CLEAN_UID.test(text) ? text.replace(/\0$/, '') : undefined;
  return CLEAN_TEXT.test(text) ? text.trimEnd() : undefined;
}

/**
 * Reads a command set (implicit VR little endian, group 0000) into the naturalized elements dcmjs-dimse's
 * `new Dataset(bytes)` produces for it (keyword keys, numbers and trimmed strings, the empty `_vrMap`
 * dcmjs adds), without dcmjs's parser. Returns undefined for anything it does not read exactly as dcmjs
 * would (unknown elements, multiple values, empty values, padding or characters dcmjs rewrites), so the
 * caller can leave the command to the library.
 */
export function decodeCommandSet(bytes: Buffer): Record<string, unknown> | undefined {
  const elements: Record<string, unknown> = { _vrMap: {} };
  let at = 0;
  while (at < bytes.length) {
    if (at + 8 > bytes.length || bytes.readUInt16LE(at) !== 0x0000) return undefined;
    const element = bytes.readUInt16LE(at + 2);
    const length = bytes.readUInt32LE(at + 4);
    const end = at + 8 + length;
    if (length === 0 || end > bytes.length) return undefined;
    const value = bytes.subarray(at + 8, end);
    if (element === 0x0000) {
      if (length !== 4) return undefined;
      elements.CommandGroupLength = value.readUInt32LE(0);
    } else {
      const known = BY_ELEMENT.get(element);
      const decoded = known && decodeValue(known.vr, value);
      if (!known || decoded === undefined) return undefined;
      elements[known.keyword] = decoded;
    }
    at = end;
  }
  return elements;
}

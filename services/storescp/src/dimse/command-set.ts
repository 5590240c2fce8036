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

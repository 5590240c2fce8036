import {
  buildPart10Prefix,
  IMPLEMENTATION_CLASS_UID,
  IMPLEMENTATION_VERSION,
  type Part10PrefixInput,
} from '@dicomflow/dicom';

const PREAMBLE_LENGTH = 128;
/** Printable ASCII without leading or trailing spaces: written as is by dcmjs too. */
const PLAIN_TEXT = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

/** One explicit VR little endian meta element with a 2-byte length (UI, SH, AE), padded to even length. */
function shortElement(element: number, vr: 'UI' | 'SH' | 'AE', text: string): Buffer {
  const padded = text.length % 2 === 0 ? text : `${text}${vr === 'UI' ? '\0' : ' '}`;
  const out = Buffer.alloc(8 + padded.length);
  out.writeUInt16LE(0x0002, 0);
  out.writeUInt16LE(element, 2);
  out.write(vr, 4, 'latin1');
  out.writeUInt16LE(padded.length, 6);
  out.write(padded, 8, 'latin1');
  return out;
}

/** (0002,0001) File Meta Information Version, OB, value 00 01. */
const META_VERSION = Buffer.from([0x02, 0x00, 0x01, 0x00, 0x4f, 0x42, 0, 0, 2, 0, 0, 0, 0x00, 0x01]);
const IMPLEMENTATION = Buffer.concat([
  shortElement(0x0012, 'UI', IMPLEMENTATION_CLASS_UID),
  shortElement(0x0013, 'SH', IMPLEMENTATION_VERSION),
]);

/**
 * The same bytes as `buildPart10Prefix` from @dicomflow/dicom (preamble, "DICM", file meta group), built
 * directly: that one goes through dcmjs's dataset writer, ~0.2 ms and a pile of garbage per instance,
 * and this runs once per received instance. Inputs it does not write the same way (empty or non-ASCII
 * values, values with edge spaces) go to `buildPart10Prefix` itself.
 */
export function part10Prefix(input: Part10PrefixInput): Buffer {
  const { sopClassUid, sopInstanceUid, transferSyntaxUid, sourceAeTitle } = input;
  const values = [sopClassUid, sopInstanceUid, transferSyntaxUid, ...(sourceAeTitle ? [sourceAeTitle] : [])];
  if (!values.every((v) => v.length <= 1024 && PLAIN_TEXT.test(v))) return buildPart10Prefix(input);
  const elements = [
    META_VERSION,
    shortElement(0x0002, 'UI', sopClassUid),
    shortElement(0x0003, 'UI', sopInstanceUid),
    shortElement(0x0010, 'UI', transferSyntaxUid),
    IMPLEMENTATION,
    ...(sourceAeTitle ? [shortElement(0x0016, 'AE', sourceAeTitle)] : []),
  ];
  const groupLength = elements.reduce((sum, e) => sum + e.length, 0);
  const head = Buffer.alloc(PREAMBLE_LENGTH + 4 + 12);
  head.write('DICM', PREAMBLE_LENGTH, 'latin1');
  // (0002,0000) File Meta Information Group Length, UL
  head.write('\x02\x00\x00\x00UL\x04\x00', PREAMBLE_LENGTH + 4, 'latin1');
  head.writeUInt32LE(groupLength, PREAMBLE_LENGTH + 12);
  return Buffer.concat([head, ...elements], head.length + groupLength);
}

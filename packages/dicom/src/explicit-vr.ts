/**
 * VRs whose explicit-VR encoding has two reserved bytes and a 4-byte length (PS3.5 7.1.2); every other VR
 * of the standard has a 2-byte length.
 */
export const LONG_LENGTH_VRS: ReadonlySet<string> = new Set([
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

/** VRs whose explicit-VR encoding has a 2-byte length (PS3.5 Table 7.1-2). */
const SHORT_LENGTH_VRS: ReadonlySet<string> = new Set([
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FD',
  'FL',
  'IS',
  'LO',
  'LT',
  'PN',
  'SH',
  'SL',
  'SS',
  'ST',
  'TM',
  'UI',
  'UL',
  'US',
]);

/**
 * Whether an explicit-VR element of `vr` has two reserved bytes and a 4-byte length. True for a VR this
 * edition does not define too: PS3.5 6.2 gives every VR a later edition adds the form of OB and UN, and a
 * reader meeting one is to frame it so (dcmtk does, reading it as UN).
 */
export function hasLongLength(vr: string): boolean {
  return !SHORT_LENGTH_VRS.has(vr);
}

/** Whether `vr` is one of the VRs this edition of the standard defines (PS3.5 Table 6.2-1). */
export function isKnownVr(vr: string): boolean {
  return SHORT_LENGTH_VRS.has(vr) || LONG_LENGTH_VRS.has(vr);
}

/**
 * VRs whose explicit-VR encoding has two reserved bytes and a 4-byte length (PS3.5 7.1.2); every other VR
 * has a 2-byte length.
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

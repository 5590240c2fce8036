/** Transfer syntaxes the receiver negotiates. Pixel data is never decoded, so every encapsulated syntax works. */
export const TransferSyntax = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  DeflatedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.99',
  ExplicitVRBigEndian: '1.2.840.10008.1.2.2',
  JpegBaseline: '1.2.840.10008.1.2.4.50',
  JpegExtended: '1.2.840.10008.1.2.4.51',
  JpegLossless: '1.2.840.10008.1.2.4.57',
  JpegLosslessSv1: '1.2.840.10008.1.2.4.70',
  JpegLsLossless: '1.2.840.10008.1.2.4.80',
  JpegLsNearLossless: '1.2.840.10008.1.2.4.81',
  Jpeg2000Lossless: '1.2.840.10008.1.2.4.90',
  Jpeg2000: '1.2.840.10008.1.2.4.91',
  Jpeg2000Part2Lossless: '1.2.840.10008.1.2.4.92',
  Jpeg2000Part2: '1.2.840.10008.1.2.4.93',
  Mpeg2Main: '1.2.840.10008.1.2.4.100',
  Mpeg2High: '1.2.840.10008.1.2.4.101',
  Mpeg4: '1.2.840.10008.1.2.4.102',
  Mpeg4Bd: '1.2.840.10008.1.2.4.103',
  Mpeg4For2dVideo: '1.2.840.10008.1.2.4.104',
  Mpeg4For3dVideo: '1.2.840.10008.1.2.4.105',
  Mpeg4Stereo: '1.2.840.10008.1.2.4.106',
  Hevc: '1.2.840.10008.1.2.4.107',
  HevcMain10: '1.2.840.10008.1.2.4.108',
  HtJ2kLossless: '1.2.840.10008.1.2.4.201',
  HtJ2kLosslessRpcl: '1.2.840.10008.1.2.4.202',
  HtJ2k: '1.2.840.10008.1.2.4.203',
  RleLossless: '1.2.840.10008.1.2.5',
} as const;

const SUPPORTED_TRANSFER_SYNTAXES: ReadonlySet<string> = new Set(Object.values(TransferSyntax));

/** True when the receiver can store data in this transfer syntax (it must be able to walk the dataset). */
export function isSupportedTransferSyntax(uid: string): boolean {
  return SUPPORTED_TRANSFER_SYNTAXES.has(uid);
}

export const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';

// Storage SOP classes of PS3.4 Annex B live under this root; the few that do not are listed below.
const STORAGE_ROOT = '1.2.840.10008.5.1.4.1.1.';
const STORAGE_OUTSIDE_ROOT: ReadonlySet<string> = new Set([
  '1.2.840.10008.5.1.4.34.7', // RT Beams Delivery Instruction Storage
  '1.2.840.10008.5.1.4.34.10', // RT Brachy Application Setup Delivery Instruction Storage
  '1.2.840.10008.5.1.4.38.1', // Hanging Protocol Storage
  '1.2.840.10008.5.1.4.39.1', // Color Palette Storage
  '1.2.840.10008.5.1.4.43.1', // Generic Implant Template Storage
  '1.2.840.10008.5.1.4.44.1', // Implant Assembly Template Storage
  '1.2.840.10008.5.1.4.45.1', // Implant Template Group Storage
]);
const DICOM_ROOT = '1.2.840.10008.';

export type SopClassKind = 'storage' | 'verification' | 'other-standard' | 'unknown';

/**
 * Classifies an abstract syntax: a standard storage class, verification, another standard (non-storage)
 * service the receiver does not offer, or a UID outside the standard (private or unknown).
 */
export function classifySopClass(uid: string): SopClassKind {
  if (uid === VERIFICATION_SOP_CLASS) return 'verification';
  if (uid.startsWith(STORAGE_ROOT) || STORAGE_OUTSIDE_ROOT.has(uid)) return 'storage';
  if (uid.startsWith(DICOM_ROOT)) return 'other-standard';
  return 'unknown';
}

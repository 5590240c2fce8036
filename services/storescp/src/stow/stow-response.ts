import type { DicomJsonDataset, DicomJsonElement } from '@dicomflow/dicom';
import { StoreStatus } from '../dimse/dimse.js';

/**
 * FailureReason (0008,1197) values (PS3.18 I.2.2). The C-STORE statuses (A700 out of resources, A900 data
 * set does not match SOP class, C000 cannot understand, 0122 SOP class not supported) keep their numbers.
 */
export const FailureReason = {
  OutOfResources: StoreStatus.OutOfResources,
  DataSetDoesNotMatchSopClass: StoreStatus.DataSetDoesNotMatchSopClass,
  CannotUnderstand: StoreStatus.CannotUnderstand,
  SopClassNotSupported: StoreStatus.SopClassNotSupported,
  /** Referenced Transfer Syntax not supported (PS3.18 I.2.2). */
  TransferSyntaxNotSupported: 0xc122,
  /**
   * The instance belongs to another study than the one in the request's path (PS3.18 10.5.1). PS3.18 has
   * no code of its own for it and lets implementations add Cxxx codes; this is dcm4chee-arc's.
   */
  StudyInstanceUidMismatch: 0xc409,
} as const;

/** An instance the response names: its SOP class and instance UIDs (empty when they could not be read). */
export interface InstanceReference {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
}

/** An instance that was not stored, and why. */
export interface FailedInstance extends InstanceReference {
  readonly failureReason: number;
  /** Said in words, for people reading the response. */
  readonly comment: string;
}

/** The HTTP status of a Store Instances response (PS3.18 table 10.5.3-1). */
export function storeInstancesStatus(stored: number, failed: number): 200 | 202 | 409 {
  if (failed === 0) return 200;
  return stored > 0 ? 202 : 409;
}

/** Longest Error Comment (VR LO). */
const MAX_COMMENT = 64;

/**
 * The Store Instances Response Module (PS3.18 annex I) in the DICOM JSON model: a ReferencedSOPSequence of
 * the stored instances, a FailedSOPSequence of the others with their FailureReason and, beyond the
 * standard items, an Error Comment (0000,0902) as a C-STORE response carries it. Retrieve URLs are empty:
 * the receiver does not serve WADO-RS.
 */
export function storeInstancesResponse(
  stored: readonly InstanceReference[],
  failed: readonly FailedInstance[],
): DicomJsonDataset {
  const response: DicomJsonDataset = { '00081190': { vr: 'UR' } };
  if (failed.length > 0) {
    response['00081198'] = sequence(
      failed.map((f) => ({
        ...reference(f),
        '00081197': { vr: 'US', Value: [f.failureReason] },
        '00000902': text('LO', f.comment.slice(0, MAX_COMMENT)),
      })),
    );
  }
  if (stored.length > 0) {
    response['00081199'] = sequence(stored.map((s) => ({ ...reference(s), '00081190': { vr: 'UR' } })));
  }
  return response;
}

function reference({ sopClassUid, sopInstanceUid }: InstanceReference): DicomJsonDataset {
  return { '00081150': text('UI', sopClassUid), '00081155': text('UI', sopInstanceUid) };
}

function text(vr: string, value: string): DicomJsonElement {
  return value === '' ? { vr } : { vr, Value: [value] };
}

function sequence(items: DicomJsonDataset[]): DicomJsonElement {
  return { vr: 'SQ', Value: items };
}

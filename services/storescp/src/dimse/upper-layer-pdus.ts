/** PDU types of the DICOM upper layer (PS3.8 9.3). */
export const PduType = {
  AssociateRq: 0x01,
  AssociateAc: 0x02,
  AssociateRj: 0x03,
  PDataTf: 0x04,
  ReleaseRq: 0x05,
  ReleaseRp: 0x06,
  Abort: 0x07,
} as const;

/** A-ABORT source (PS3.8 9.3.8): we abort as the service provider. */
const SERVICE_PROVIDER = 2;

/** A-ABORT reasons (PS3.8 9.3.8, source = service provider). */
export const AbortReason = {
  NotSpecified: 0,
  UnrecognizedPdu: 1,
  UnexpectedPdu: 2,
  UnrecognizedPduParameter: 4,
  UnexpectedPduParameter: 5,
  InvalidPduParameterValue: 6,
} as const;
export type AbortReasonCode = (typeof AbortReason)[keyof typeof AbortReason];

/** An A-ABORT PDU from the service provider with `reason`. */
export function abortPdu(reason: AbortReasonCode): Buffer {
  return Buffer.from([PduType.Abort, 0, 0, 0, 0, 4, 0, 0, SERVICE_PROVIDER, reason]);
}

/** An A-ASSOCIATE-RJ PDU (PS3.8 9.3.4) with the given result, source and reason. */
export function associateRjPdu(result: number, source: number, reason: number): Buffer {
  return Buffer.from([PduType.AssociateRj, 0, 0, 0, 0, 4, 0, result, source, reason]);
}

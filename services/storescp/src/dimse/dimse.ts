// dcmjs-dimse is a CommonJS bundle: load it whole and take the classes from it.
import dimse from 'dcmjs-dimse';

export const { Scp, Dataset, Implementation, log: dimseLog } = dimse;
export const { CEchoResponse, CStoreResponse } = dimse.responses;
/** The library's C-STORE-RQ and C-ECHO-RQ classes (instance types {@link CStoreRequest}, {@link CEchoRequest}). */
export const { CStoreRequest: CStoreRequestClass, CEchoRequest: CEchoRequestClass } = dimse.requests;
export type Association = InstanceType<typeof dimse.association.Association>;
export type PresentationContext = InstanceType<typeof dimse.association.PresentationContext>;
export type CStoreRequest = InstanceType<typeof dimse.requests.CStoreRequest>;
export type CEchoRequest = InstanceType<typeof dimse.requests.CEchoRequest>;
export type CStoreResponseType = InstanceType<typeof dimse.responses.CStoreResponse>;
export type CEchoResponseType = InstanceType<typeof dimse.responses.CEchoResponse>;
export type DatasetType = InstanceType<typeof dimse.Dataset>;

/** C-STORE statuses the receiver answers with (PS3.4 B.2.3, PS3.7 C). */
export const StoreStatus = {
  Success: 0x0000,
  /** Refused: out of resources (disk full, spool unwritable). */
  OutOfResources: 0xa700,
  /** Error: data set does not match SOP class (required identifying elements missing or inconsistent). */
  DataSetDoesNotMatchSopClass: 0xa900,
  /** Error: cannot understand (the dataset cannot be parsed). */
  CannotUnderstand: 0xc000,
  /** Refused: SOP class not supported. */
  SopClassNotSupported: 0x0122,
} as const;
export type StoreStatusCode = (typeof StoreStatus)[keyof typeof StoreStatus];

/** Command Field (0000,0100) of a C-STORE-RQ (PS3.7 E.1); the library's CommandFieldType.CStoreRequest. */
export const C_STORE_RQ = 0x0001;
/** Command Field of a C-ECHO-RQ. */
export const C_ECHO_RQ = 0x0030;
/** Command Field of a C-CANCEL-RQ: it is never answered. */
export const C_CANCEL_RQ = 0x0fff;
/** Command Field bit set in every response (PS3.7 E.1). */
export const RESPONSE_BIT = 0x8000;

/** General DIMSE statuses (PS3.7 C.4) for requests the receiver does not serve. */
export const DimseStatus = {
  /** Failure: unrecognized operation (a DIMSE service we do not provide). */
  UnrecognizedOperation: 0x0211,
} as const;
/** PDU type of P-DATA-TF (PS3.8 9.3.1); the library's RawPduType.PDataTF. */
export const P_DATA_TF = 0x04;

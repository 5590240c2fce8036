export { assertDatasetStructure, DatasetFramer, DatasetStructureError } from './dataset-framer.js';
export { toNonBulkJson, stringValue } from './dicom-json.js';
export { DEFAULT_MAX_VALUE_BYTES, readElements } from './element-reader.js';
export type { ReadElementsOptions } from './element-reader.js';
export { textDecodingFor } from './charset.js';
export type { TextDecoding } from './charset.js';
export { trimEnd } from './text-values.js';
export { inspectPart10File, inspectPart10Buffer, MissingTagError } from './inspect.js';
export type { InstanceInfo, InspectOptions } from './inspect.js';
export {
  buildPart10Prefix,
  datasetBytes,
  datasetOffset,
  DicomParseError,
  IMPLEMENTATION_CLASS_UID,
  IMPLEMENTATION_VERSION,
  metaTransferSyntax,
} from './part10.js';
export type { Part10PrefixInput } from './part10.js';
export { isPatientTag, patientKeywords, resolveTag, Tags } from './tags.js';
export { createTarStream, tarMemberName, tarMembersSize, tarSize } from './tar.js';
export type { TarFileEntry } from './tar.js';
export {
  END_OF_ARCHIVE_BYTES,
  fitsUstar,
  tarChunks,
  tarHeader,
  TarMemberReadError,
  TarMemberSizeError,
  tarPadding,
} from './tar-writer.js';
export type { TarHeaderFields, TarMember } from './tar-writer.js';
export {
  classifySopClass,
  isSupportedTransferSyntax,
  TransferSyntax,
  VERIFICATION_SOP_CLASS,
} from './uids.js';
export type { SopClassKind } from './uids.js';
export type { DicomJsonDataset, DicomJsonElement } from './model.js';
export {
  CERTIFICATE_ERROR_CODES,
  convertLittleEndian,
  INSTANCE_HEAD_MAX_BYTES,
  isStoredStatus,
  isTransientStatus,
  metaGroupEnd,
  NotAnInstanceError,
  parseInstanceHead,
  readInstanceFile,
  StoreAssociation,
  StoreScuError,
} from './store-scu/index.js';
export type {
  CStoreResponse,
  InstanceFile,
  OpenAssociationOptions,
  ProposedContext,
  StoreScuErrorCode,
} from './store-scu/index.js';
export { LONG_LENGTH_VRS } from './explicit-vr.js';

export { CERTIFICATE_ERROR_CODES, StoreAssociation } from './association.js';
export type { OpenAssociationOptions } from './association.js';
export { StoreScuError } from './errors.js';
export type { StoreScuErrorCode } from './errors.js';
export { isStoredStatus, isTransientStatus } from './command.js';
export type { CStoreResponse } from './command.js';
export {
  INSTANCE_HEAD_MAX_BYTES,
  metaGroupEnd,
  NotAnInstanceError,
  parseInstanceHead,
  readInstanceFile,
} from './instance-file.js';
export type { InstanceFile } from './instance-file.js';
export type { ProposedContext } from './pdu.js';
export { convertLittleEndian } from './convert-little-endian.js';

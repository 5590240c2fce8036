export { StoreAssociation, StoreScuError } from './association.js';
export type { OpenAssociationOptions, StoreScuErrorCode } from './association.js';
export { isStoredStatus, isTransientStatus } from './command.js';
export type { CStoreResponse } from './command.js';
export { NotAnInstanceError, readInstanceFile } from './instance-file.js';
export type { InstanceFile } from './instance-file.js';
export type { ProposedContext } from './pdu.js';
export { convertLittleEndian } from './convert-little-endian.js';

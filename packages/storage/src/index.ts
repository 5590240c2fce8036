export { createStorage } from './storage.js';
export type { ListedObject, ObjectInfo, Storage, StorageConfig } from './storage.js';
export { StorageError, toStorageError } from './storage-error.js';
export type { StorageErrorContext, StorageErrorKind } from './storage-error.js';

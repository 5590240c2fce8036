export { createStorage } from './storage.js';
export type {
  IncompleteUpload,
  ListedObject,
  ObjectInfo,
  PartedUpload,
  Storage,
  StorageConfig,
} from './storage.js';
export { abortStaleUploads } from './stale-uploads.js';
export { StorageError, toStorageError } from './storage-error.js';
export type { StorageErrorContext, StorageErrorKind } from './storage-error.js';

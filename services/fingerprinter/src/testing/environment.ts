import { createStorage, type Storage } from '@dicomflow/storage';
import { testStorageConfig } from '@dicomflow/test-helpers';

/** A client of the tests' S3 server. */
export function testStorage(): Storage {
  return createStorage(testStorageConfig());
}

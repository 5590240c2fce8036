import type { Storage } from './storage.js';
import { toStorageError } from './storage-error.js';

/**
 * Aborts the multipart uploads of `bucket` begun before `olderThan` and never completed (a writer that
 * crashed or lost S3 mid-upload and never came back for that key), freeing their parts. An upload still
 * under way is younger than any sensible age: a 64 MiB part takes seconds. A missing bucket has none.
 * Resolves with how many were aborted.
 */
export async function abortStaleUploads(storage: Storage, bucket: string, olderThan: Date): Promise<number> {
  let uploads;
  try {
    uploads = await storage.listIncompleteUploads(bucket);
  } catch (err) {
    if (toStorageError(err, { operation: 'listIncompleteUploads', bucket }).kind === 'gone') return 0;
    throw err;
  }
  let aborted = 0;
  for (const upload of uploads) {
    if (upload.initiated >= olderThan) continue;
    await storage.abortUpload(bucket, upload.key, upload.uploadId);
    aborted++;
  }
  return aborted;
}

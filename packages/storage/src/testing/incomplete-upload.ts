import { Client } from 'minio';
import type { StorageConfig } from '../storage.js';

/**
 * Begins a multipart upload of `key` and leaves it incomplete, as a writer that died mid-upload would;
 * resolves with its upload id.
 */
export async function beginIncompleteUpload(
  config: StorageConfig,
  bucket: string,
  key: string,
): Promise<string> {
  const client = new Client({
    endPoint: config.endPoint,
    port: config.port,
    useSSL: config.useSSL,
    accessKey: config.accessKey,
    secretKey: config.secretKey,
  });
  return client.initiateNewMultipartUpload(bucket, key, {});
}

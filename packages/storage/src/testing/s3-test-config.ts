import { randomBytes } from 'node:crypto';
import { StorageError } from '../storage-error.js';
import type { Storage, StorageConfig } from '../storage.js';

/**
 * The S3 server the integration tests use: the S3_* variables scripts/test.sh exports, else the s3rver on
 * 127.0.0.1:9000. The part size defaults to 5 GiB because s3rver has no multipart uploads.
 */
export function testStorageConfig(overrides: Partial<StorageConfig> = {}): StorageConfig {
  const env = process.env;
  return {
    endPoint: env.S3_ENDPOINT ?? '127.0.0.1',
    port: Number(env.S3_PORT ?? 9000),
    useSSL: env.S3_USE_SSL === 'true',
    accessKey: env.S3_ACCESS_KEY ?? 'S3RVER',
    secretKey: env.S3_SECRET_KEY ?? 'S3RVER',
    partSize: Number(env.S3_PART_SIZE ?? 5 * 1024 * 1024 * 1024),
    ...overrides,
  };
}

/** A bucket name no other test run uses (S3 names: lower case, digits, dashes). */
export function uniqueBucketName(purpose: string): string {
  return `test-${purpose}-${randomBytes(5).toString('hex')}`;
}

/** Removes every object in the bucket, then the bucket; a bucket that is already gone is fine. */
export async function removeBucketAndObjects(storage: Storage, bucket: string): Promise<void> {
  const objects = await storage.list(bucket).catch((err: unknown) => {
    if (err instanceof StorageError && err.kind === 'gone') return [];
    throw err;
  });
  for (const object of objects) await storage.remove(bucket, object.key);
  await storage.removeBucket(bucket);
}

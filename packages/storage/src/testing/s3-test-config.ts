import { randomBytes } from 'node:crypto';
import { StorageError } from '../storage-error.js';
import type { Storage, StorageConfig } from '../storage.js';

/**
 * The S3 server the integration tests use: the S3_* variables scripts/test.sh exports (its own MinIO),
 * else a MinIO on 127.0.0.1:9000 with its default credentials. The part size is production's (64 MiB), so
 * every study above it goes up as a multipart upload, as in production.
 */
export function testStorageConfig(overrides: Partial<StorageConfig> = {}): StorageConfig {
  const env = process.env;
  return {
    endPoint: env.S3_ENDPOINT ?? '127.0.0.1',
    port: Number(env.S3_PORT ?? 9000),
    useSSL: env.S3_USE_SSL === 'true',
    accessKey: env.S3_ACCESS_KEY ?? 'minioadmin',
    secretKey: env.S3_SECRET_KEY ?? 'minioadmin',
    partSize: Number(env.S3_PART_SIZE ?? DEFAULT_PART_SIZE),
    ...overrides,
  };
}

/** Production's part size (the S3_PART_SIZE default). */
const DEFAULT_PART_SIZE = 64 * 1024 * 1024;

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

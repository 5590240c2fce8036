import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { abortStaleUploads } from './stale-uploads.js';
import { createStorage } from './storage.js';
import { beginIncompleteUpload } from './testing/incomplete-upload.js';
import { removeBucketAndObjects, testStorageConfig, uniqueBucketName } from './testing/s3-test-config.js';

const config = testStorageConfig();
const storage = createStorage(config);
const bucket = uniqueBucketName('stale-uploads');

describe('abortStaleUploads', () => {
  beforeAll(async () => {
    await storage.ensureBucket(bucket);
  });
  afterAll(async () => {
    for (const upload of await storage.listIncompleteUploads(bucket))
      await storage.abortUpload(bucket, upload.key, upload.uploadId);
    await removeBucketAndObjects(storage, bucket);
  });

  it('aborts uploads begun before the cut-off, keys at any depth, and keeps younger ones', async () => {
    await beginIncompleteUpload(config, bucket, 'old.tar');
    await beginIncompleteUpload(config, bucket, 'run/0/output.tar');
    const listed = await storage.listIncompleteUploads(bucket);
    expect(listed.map((u) => u.key).sort()).toEqual(['old.tar', 'run/0/output.tar']);
    const cutoff = new Date(Math.max(...listed.map((u) => u.initiated.getTime())) + 1);
    // Begun after the cut-off: the server's clock says so.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await beginIncompleteUpload(config, bucket, 'young.tar');

    expect(await abortStaleUploads(storage, bucket, cutoff)).toBe(2);
    expect((await storage.listIncompleteUploads(bucket)).map((u) => u.key)).toEqual(['young.tar']);
    expect(await abortStaleUploads(storage, bucket, cutoff)).toBe(0);
  });

  it('finds none in a bucket that does not exist', async () => {
    expect(await abortStaleUploads(storage, uniqueBucketName('missing'), new Date())).toBe(0);
  });

  it('removes objects in batches; missing keys count as removed', async () => {
    await storage.putBuffer(bucket, 'a/1', 'x');
    await storage.putBuffer(bucket, 'a/2', 'y');
    await storage.removeObjects(bucket, ['a/1', 'a/2', 'a/never-there']);
    expect(await storage.list(bucket, 'a/')).toEqual([]);
  });
});

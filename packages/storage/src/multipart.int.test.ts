import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from './storage-error.js';
import { createStorage } from './storage.js';
import { startCountingRelay, type CountingRelay } from './testing/counting-relay.js';
import { generatedStream, sha256Of } from './testing/generated-stream.js';
import { startMinio, type MinioProcess } from './testing/minio-process.js';
import { removeBucketAndObjects, testStorageConfig, uniqueBucketName } from './testing/s3-test-config.js';

const MIB = 1024 * 1024;

describe('multipart uploads at production part size', () => {
  const config = testStorageConfig();
  const storage = createStorage(config);
  const bucket = uniqueBucketName('multipart');

  beforeAll(async () => {
    await storage.ensureBucket(bucket);
  });
  afterAll(async () => {
    await removeBucketAndObjects(storage, bucket);
  });

  it('sends a study larger than one part as parts and reads it back byte-exact', async () => {
    expect(config.partSize).toBe(64 * MIB);
    const size = 2 * config.partSize + 12_345;
    const generated = generatedStream(size);
    const { etag } = await storage.putStream(bucket, 'study.tar', generated.stream, size);
    // S3 gives a multipart object the ETag `<md5 of the parts' md5s>-<number of parts>`.
    expect(etag).toMatch(/-3$/);
    expect((await storage.stat(bucket, 'study.tar'))?.size).toBe(size);
    expect(await sha256Of(await storage.getStream(bucket, 'study.tar'))).toBe(await generated.sha256);
    expect(await storage.incompleteUploads(bucket, 'study.tar')).toEqual([]);
  });
});

describe('S3 killed in the middle of a multipart upload', () => {
  // A test about parts: 5 MiB parts (S3's smallest) make a 30 MiB object six parts.
  const partSize = 5 * MIB;
  const size = 30 * MIB + 7;
  const bucket = uniqueBucketName('killed');
  let minio: MinioProcess;
  let relay: CountingRelay;

  beforeAll(async () => {
    minio = await startMinio();
    relay = await startCountingRelay({ host: '127.0.0.1', port: minio.port });
    await createStorage(minio.config).ensureBucket(bucket);
  });
  afterAll(async () => {
    await relay.close();
    await minio.close();
  });

  it('fails as transient, and the retry completes the object with no incomplete upload left', async () => {
    const storage = createStorage({ ...minio.config, port: relay.port, partSize });
    const first = generatedStream(size);
    const upload = storage.putStream(bucket, 'study.tar', first.stream, size);
    // Two parts have gone out: the upload exists on the server, and more is to come.
    await relay.sent(2 * partSize + MIB);
    await minio.kill();
    const failure = await upload.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(StorageError);
    expect((failure as StorageError).kind).toBe('transient');

    await minio.restart();
    // The killed upload is still open on the server (nobody could abort it while S3 was down).
    expect(await storage.incompleteUploads(bucket, 'study.tar')).toHaveLength(1);
    expect(await storage.stat(bucket, 'study.tar')).toBeUndefined();

    const again = generatedStream(size);
    await storage.putStream(bucket, 'study.tar', again.stream, size);
    expect(await sha256Of(await storage.getStream(bucket, 'study.tar'))).toBe(await again.sha256);
    expect(await storage.incompleteUploads(bucket, 'study.tar')).toEqual([]);
    expect((await storage.list(bucket)).map((o) => o.key)).toEqual(['study.tar']);
  });

  it('aborts the upload when a part is refused while S3 is up', async () => {
    const storage = createStorage({ ...minio.config, port: relay.port, partSize });
    // A stream that ends early: the size check fails the upload after parts went out.
    const short = generatedStream(size - MIB);
    const failure = await storage.putStream(bucket, 'short.tar', short.stream, size).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ kind: 'permanent', code: 'SizeMismatch' });
    expect(await storage.incompleteUploads(bucket, 'short.tar')).toEqual([]);
    expect(await storage.stat(bucket, 'short.tar')).toBeUndefined();
  });
});

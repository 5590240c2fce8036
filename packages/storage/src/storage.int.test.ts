import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from './storage-error.js';
import { createStorage } from './storage.js';
import { generatedStream, sha256Of } from './testing/generated-stream.js';
import { removeBucketAndObjects, testStorageConfig, uniqueBucketName } from './testing/s3-test-config.js';

const storage = createStorage(testStorageConfig());
const bucket = uniqueBucketName('storage');

async function rejection(promise: Promise<unknown>): Promise<StorageError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

async function closedPort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('storage against a real S3 server', () => {
  beforeAll(async () => {
    await storage.ensureBucket(bucket);
  });
  afterAll(async () => {
    await removeBucketAndObjects(storage, bucket);
  });

  it('ensureBucket is idempotent, also when racing', async () => {
    const raced = uniqueBucketName('race');
    try {
      await Promise.all([
        storage.ensureBucket(raced),
        storage.ensureBucket(raced),
        storage.ensureBucket(raced),
      ]);
      await storage.ensureBucket(raced);
      await storage.putBuffer(raced, 'probe', 'x');
      expect((await storage.list(raced)).map((o) => o.key)).toEqual(['probe']);
    } finally {
      await removeBucketAndObjects(storage, raced);
    }
  });

  it('round-trips a 30 MB stream of known size byte for byte', async () => {
    const size = 30 * 1024 * 1024 + 123;
    const generated = generatedStream(size);
    const { etag } = await storage.putStream(bucket, 'big/object.bin', generated.stream, size, {
      'content-type': 'application/x-tar',
      purpose: 'test',
    });
    expect(etag).toMatch(/^[0-9a-f]{32}/);
    const info = await storage.stat(bucket, 'big/object.bin');
    expect(info).toMatchObject({
      size,
      etag,
      metadata: { 'content-type': 'application/x-tar', purpose: 'test' },
    });
    expect(await sha256Of(await storage.getStream(bucket, 'big/object.bin'))).toBe(await generated.sha256);
  });

  it('refuses a stream that is shorter or longer than declared, and stores nothing', async () => {
    const short = await rejection(storage.putStream(bucket, 'short', Readable.from([Buffer.alloc(10)]), 11));
    expect(short).toMatchObject({ kind: 'permanent', code: 'SizeMismatch' });
    const long = await rejection(storage.putStream(bucket, 'long', Readable.from([Buffer.alloc(12)]), 11));
    expect(long).toMatchObject({ kind: 'permanent', code: 'SizeMismatch' });
    // MinIO (as S3) discards an incomplete body.
    expect(await storage.stat(bucket, 'short')).toBeUndefined();
    expect(await storage.stat(bucket, 'long')).toBeUndefined();
  });

  it('stores an empty stream', async () => {
    await storage.putStream(bucket, 'empty', Readable.from([]), 0);
    expect((await storage.getBuffer(bucket, 'empty')).length).toBe(0);
  });

  it('stat reports present objects and undefined for absent ones', async () => {
    const { etag } = await storage.putBuffer(bucket, 'stat/index.json', '{"a":1}', 'application/json');
    expect(await storage.stat(bucket, 'stat/index.json')).toEqual({
      size: 7,
      etag,
      metadata: expect.objectContaining({ 'content-type': 'application/json' }) as unknown,
    });
    expect(await storage.stat(bucket, 'stat/missing.json')).toBeUndefined();
  });

  it('getBuffer returns small objects and refuses ones above maxBytes', async () => {
    await storage.putBuffer(bucket, 'buf/ten', Buffer.from('0123456789'));
    expect((await storage.getBuffer(bucket, 'buf/ten', 10)).toString()).toBe('0123456789');
    const refused = await rejection(storage.getBuffer(bucket, 'buf/ten', 9));
    expect(refused).toMatchObject({ kind: 'permanent', code: 'ObjectTooLarge', key: 'buf/ten' });
  });

  it('putFile uploads a local file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'storage-test-'));
    try {
      const path = join(dir, 'file.txt');
      await writeFile(path, 'from a file');
      await storage.putFile(bucket, 'file/file.txt', path);
      expect((await storage.getBuffer(bucket, 'file/file.txt')).toString()).toBe('from a file');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('remove deletes an object, and an absent key is fine', async () => {
    await storage.putBuffer(bucket, 'rm/me', 'x');
    await storage.remove(bucket, 'rm/me');
    expect(await storage.stat(bucket, 'rm/me')).toBeUndefined();
    await expect(storage.remove(bucket, 'rm/never-existed')).resolves.toBeUndefined();
  });

  it('list returns the objects under a prefix, recursively', async () => {
    await storage.putBuffer(bucket, 'list/a/1', '1');
    await storage.putBuffer(bucket, 'list/a/2/deep', '22');
    await storage.putBuffer(bucket, 'list/b', '333');
    const listed = await storage.list(bucket, 'list/a/');
    expect(listed.map(({ key, size }) => ({ key, size }))).toEqual([
      { key: 'list/a/1', size: 1 },
      { key: 'list/a/2/deep', size: 2 },
    ]);
    expect(listed[0]?.lastModified).toBeInstanceOf(Date);
    expect((await storage.list(bucket, 'list/')).length).toBe(3);
  });

  it('a missing key fails with kind gone', async () => {
    const viaStream = await rejection(storage.getStream(bucket, 'no/such/key'));
    expect(viaStream).toMatchObject({ kind: 'gone', code: 'NoSuchKey', bucket, key: 'no/such/key' });
    expect((await rejection(storage.getBuffer(bucket, 'no/such/key'))).kind).toBe('gone');
  });

  it('a missing bucket fails with kind gone, an invalid bucket name with kind permanent', async () => {
    expect((await rejection(storage.getStream(uniqueBucketName('absent'), 'k'))).kind).toBe('gone');
    expect((await rejection(storage.putBuffer('Not_A_Valid_Bucket', 'k', 'x'))).kind).toBe('permanent');
  });

  it('unknown credentials fail with kind permanent', async () => {
    const intruder = createStorage(testStorageConfig({ accessKey: 'NOBODY' }));
    expect(await rejection(intruder.getBuffer(bucket, 'buf/ten'))).toMatchObject({
      kind: 'permanent',
      code: 'InvalidAccessKeyId',
    });
  });

  it('check() passes against the server and fails as transient against a closed port', async () => {
    await storage.check();
    const nowhere = createStorage(testStorageConfig({ port: await closedPort() }));
    const err = await rejection(nowhere.check());
    expect(err).toMatchObject({ kind: 'transient', code: 'ECONNREFUSED' });
  });
});

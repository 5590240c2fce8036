import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from './storage-error.js';
import { createStorage } from './storage.js';
import { startCountingRelay, type CountingRelay } from './testing/counting-relay.js';
import { generatedStream, sha256Of } from './testing/generated-stream.js';
import { removeBucketAndObjects, testStorageConfig, uniqueBucketName } from './testing/s3-test-config.js';

describe('putStream streams', () => {
  const config = testStorageConfig();
  const direct = createStorage(config);
  const bucket = uniqueBucketName('streaming');
  let relay: CountingRelay;

  beforeAll(async () => {
    await direct.ensureBucket(bucket);
    relay = await startCountingRelay({ host: config.endPoint, port: config.port });
  });
  afterAll(async () => {
    await relay.close();
    await removeBucketAndObjects(direct, bucket);
  });

  it('sends the first bytes before the source stream has produced the rest', async () => {
    const viaRelay = createStorage({ ...config, port: relay.port });
    const size = 8 * 1024 * 1024;
    const half = size / 2;
    // The second half is only produced once a quarter of the object has reached the server, so an
    // implementation that buffered the stream before sending would never finish (and time out).
    const generated = generatedStream(size, (offset) =>
      offset < half ? Promise.resolve() : relay.sent(half / 2),
    );
    await viaRelay.putStream(bucket, 'streamed.bin', generated.stream, size);
    expect(await sha256Of(await direct.getStream(bucket, 'streamed.bin'))).toBe(await generated.sha256);
  }, 30_000);
});

describe('getStream', () => {
  const config = testStorageConfig();
  const direct = createStorage(config);
  const bucket = uniqueBucketName('download');
  const size = 8 * 1024 * 1024;
  let relay: CountingRelay;
  let sha256: string;

  beforeAll(async () => {
    await direct.ensureBucket(bucket);
    const generated = generatedStream(size);
    await direct.putStream(bucket, 'whole.bin', generated.stream, size);
    sha256 = await generated.sha256;
    relay = await startCountingRelay({ host: config.endPoint, port: config.port });
  });
  afterAll(async () => {
    await relay.close();
    await removeBucketAndObjects(direct, bucket);
  });

  it('reads an object byte for byte', async () => {
    expect(await sha256Of(await direct.getStream(bucket, 'whole.bin'))).toBe(sha256);
  });

  it('fails the stream with a transient StorageError when the connection is cut mid-body', async () => {
    const viaRelay = createStorage({ ...config, port: relay.port });
    relay.cutAfter(size / 2);
    const stream = await viaRelay.getStream(bucket, 'whole.bin');
    let received = 0;
    const failure = await (async () => {
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) received += chunk.length;
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(failure).toBeInstanceOf(StorageError);
    expect(failure).toMatchObject({ kind: 'transient', operation: 'getStream', bucket, key: 'whole.bin' });
    expect((failure as StorageError).code).toEqual(expect.any(String));
    expect(received).toBeLessThan(size);
  }, 30_000);
});

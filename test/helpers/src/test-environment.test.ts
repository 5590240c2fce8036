import { afterEach, describe, expect, it, vi } from 'vitest';
import { testBrokerConfig, testEnvironment, testStorageConfig } from './test-environment.js';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('testEnvironment', () => {
  it('says what the broker and storage configs say, as service configuration variables', () => {
    vi.stubEnv('RABBIT_PORT', '5673');
    vi.stubEnv('S3_ENDPOINT', 's3.test');
    vi.stubEnv('S3_USE_SSL', 'true');
    const env = testEnvironment();
    const rabbit = testBrokerConfig();
    const s3 = testStorageConfig();
    expect(rabbit.port).toBe(5673);
    expect(env).toMatchObject({
      RABBIT_HOSTNAME: rabbit.hostname,
      RABBIT_PORT: '5673',
      RABBIT_USERNAME: rabbit.username,
      RABBIT_PASSWORD: rabbit.password,
      S3_ENDPOINT: 's3.test',
      S3_PORT: String(s3.port),
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
      S3_USE_SSL: 'true',
      S3_PART_SIZE: String(s3.partSize),
    });
  });

  it("defaults to the servers on this machine, with production's part size", () => {
    for (const name of ['RABBIT_HOSTNAME', 'S3_ENDPOINT', 'S3_PART_SIZE', 'DB_HOST', 'DB_USER', 'DB_NAME'])
      vi.stubEnv(name, undefined);
    expect(testEnvironment()).toMatchObject({
      RABBIT_HOSTNAME: '127.0.0.1',
      S3_ENDPOINT: '127.0.0.1',
      S3_PART_SIZE: String(64 * 1024 * 1024),
      DB_HOST: '127.0.0.1',
      DB_USER: 'postgres',
      DB_NAME: 'dicomflow_test',
    });
  });
});

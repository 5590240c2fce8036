import { createStorage, type Storage } from '@dicomflow/storage';
import { testStorageConfig } from '@dicomflow/storage/testing';

/** Environment for the real RabbitMQ and S3 the tests run against (set by scripts/test.sh). */
export function testEnvironment(): NodeJS.ProcessEnv {
  return {
    RABBIT_HOSTNAME: process.env.RABBIT_HOSTNAME ?? '127.0.0.1',
    RABBIT_PORT: process.env.RABBIT_PORT ?? '5672',
    RABBIT_USERNAME: process.env.RABBIT_USERNAME ?? 'guest',
    RABBIT_PASSWORD: process.env.RABBIT_PASSWORD ?? 'guest',
    S3_ENDPOINT: process.env.S3_ENDPOINT ?? '127.0.0.1',
    S3_PORT: process.env.S3_PORT ?? '9000',
    S3_ACCESS_KEY: process.env.S3_ACCESS_KEY ?? 'S3RVER',
    S3_SECRET_KEY: process.env.S3_SECRET_KEY ?? 'S3RVER',
    S3_USE_SSL: process.env.S3_USE_SSL ?? 'false',
    S3_PART_SIZE: process.env.S3_PART_SIZE ?? '5368709120',
  };
}

/** A client of the tests' S3 server. */
export function testStorage(): Storage {
  return createStorage(testStorageConfig());
}

// The one place that says where the tests' real RabbitMQ, S3 and PostgreSQL are (scripts/test.sh exports
// the same values; the defaults are the servers on this machine).
import { testStorageConfig } from '@dicomflow/storage/testing';

/** How to reach the tests' RabbitMQ (the shape of amqplib's connect options and the broker's config). */
export interface TestBrokerConfig {
  readonly hostname: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
}

/** The tests' RabbitMQ: the RABBIT_* variables, else guest@127.0.0.1:5672. */
export function testBrokerConfig(): TestBrokerConfig {
  const env = process.env;
  return {
    hostname: env.RABBIT_HOSTNAME ?? '127.0.0.1',
    port: Number(env.RABBIT_PORT ?? 5672),
    username: env.RABBIT_USERNAME ?? 'guest',
    password: env.RABBIT_PASSWORD ?? 'guest',
  };
}

/**
 * Service configuration variables (RABBIT_*, S3_*, DB_*) for the real servers the tests run against, to
 * spread into the `env` a service under test is configured from. S3 comes from {@link testStorageConfig},
 * so its defaults (MinIO, production's 64 MiB parts) are written once.
 */
export function testEnvironment(): Record<string, string> {
  const env = process.env;
  const rabbit = testBrokerConfig();
  const s3 = testStorageConfig();
  return {
    RABBIT_HOSTNAME: rabbit.hostname,
    RABBIT_PORT: String(rabbit.port),
    RABBIT_USERNAME: rabbit.username,
    RABBIT_PASSWORD: rabbit.password,
    S3_ENDPOINT: s3.endPoint,
    S3_PORT: String(s3.port),
    S3_ACCESS_KEY: s3.accessKey,
    S3_SECRET_KEY: s3.secretKey,
    S3_USE_SSL: String(s3.useSSL),
    S3_PART_SIZE: String(s3.partSize),
    DB_HOST: env.DB_HOST ?? '127.0.0.1',
    DB_PORT: env.DB_PORT ?? '5432',
    DB_NAME: env.DB_NAME ?? 'dicomflow_test',
    DB_USER: env.DB_USER ?? 'postgres',
    DB_PASS: env.DB_PASS ?? '',
  };
}

export { testStorageConfig };

import type { CommonConfig } from './services.js';

/** Connection options for the broker package (amqplib). */
export interface BrokerConnectionConfig {
  hostname: string;
  port: number;
  username: string;
  password: string;
}

/** Connection options for the storage package (shaped like the MinIO client's options). */
export interface StorageConnectionConfig {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  partSize: number;
}

/** Connection options for PostgreSQL (shaped like node-postgres' client options). */
export interface PostgresConnectionConfig {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/** Picks the PostgreSQL connection settings out of a service's configuration. */
export function postgresConfigFrom(
  c: Pick<CommonConfig, 'DB_HOST' | 'DB_PORT' | 'DB_NAME' | 'DB_USER' | 'DB_PASS'>,
): PostgresConnectionConfig {
  return { host: c.DB_HOST, port: c.DB_PORT, database: c.DB_NAME, user: c.DB_USER, password: c.DB_PASS };
}

/** The message exchange and its dead-letter exchange (`<RABBIT_EXCHANGE>.dead`), for connectBroker. */
export function exchangesFrom(c: CommonConfig): { exchange: string; deadExchange: string } {
  return { exchange: c.RABBIT_EXCHANGE, deadExchange: `${c.RABBIT_EXCHANGE}.dead` };
}

/** Picks the RabbitMQ connection settings out of a service's configuration. */
export function brokerConfigFrom(c: CommonConfig): BrokerConnectionConfig {
  return {
    hostname: c.RABBIT_HOSTNAME,
    port: c.RABBIT_PORT,
    username: c.RABBIT_USERNAME,
    password: c.RABBIT_PASSWORD,
  };
}

/** Picks the S3 (MinIO) connection settings out of a service's configuration. */
export function storageConfigFrom(c: CommonConfig): StorageConnectionConfig {
  return {
    endPoint: c.S3_ENDPOINT,
    port: c.S3_PORT,
    useSSL: c.S3_USE_SSL,
    accessKey: c.S3_ACCESS_KEY,
    secretKey: c.S3_SECRET_KEY,
    partSize: c.S3_PART_SIZE,
  };
}

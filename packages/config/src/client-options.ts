import type { CommonConfig } from './services.js';

/** Paths of a link's PEM files (read by the package that connects; absent = none). */
export interface TlsFileOptions {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Connection options for the broker package (amqplib). */
export interface BrokerConnectionConfig {
  hostname: string;
  port: number;
  username: string;
  password: string;
  /** Present when RABBIT_TLS is on: connect over AMQPS. */
  tls?: TlsFileOptions & { servername?: string };
}

/** Connection options for the storage package (shaped like the MinIO client's options). */
export interface StorageConnectionConfig {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  partSize: number;
  /** CA file to trust for HTTPS (S3_CA), when useSSL is on. */
  ca?: string;
}

/** Connection options for PostgreSQL (shaped like node-postgres' client options). */
export interface PostgresConnectionConfig {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** Present when DB_SSL is on: SSL with the server certificate verified (verify-full). */
  ssl?: TlsFileOptions;
}

/** The common keys {@link postgresConfigFrom} reads (the SSL ones may be left out: SSL off). */
export type PostgresKeys = Pick<CommonConfig, 'DB_HOST' | 'DB_PORT' | 'DB_NAME' | 'DB_USER' | 'DB_PASS'> &
  Partial<Pick<CommonConfig, 'DB_SSL' | 'DB_SSL_CA' | 'DB_SSL_CERT' | 'DB_SSL_KEY'>>;

/** The non-empty paths among `files`, so that '' (the default) means "none". */
function givenFiles(files: Record<keyof TlsFileOptions, string | undefined>): TlsFileOptions {
  const given: TlsFileOptions = {};
  for (const name of ['ca', 'cert', 'key'] as const) {
    const path = files[name];
    if (path !== undefined && path !== '') given[name] = path;
  }
  return given;
}

/** Picks the PostgreSQL connection settings out of a service's configuration. */
export function postgresConfigFrom(c: PostgresKeys): PostgresConnectionConfig {
  return {
    host: c.DB_HOST,
    port: c.DB_PORT,
    database: c.DB_NAME,
    user: c.DB_USER,
    password: c.DB_PASS,
    ...(c.DB_SSL === true
      ? { ssl: givenFiles({ ca: c.DB_SSL_CA, cert: c.DB_SSL_CERT, key: c.DB_SSL_KEY }) }
      : {}),
  };
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
    ...(c.RABBIT_TLS
      ? {
          tls: {
            ...givenFiles({ ca: c.RABBIT_TLS_CA, cert: c.RABBIT_TLS_CERT, key: c.RABBIT_TLS_KEY }),
            ...(c.RABBIT_TLS_SERVERNAME === '' ? {} : { servername: c.RABBIT_TLS_SERVERNAME }),
          },
        }
      : {}),
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
    ...(c.S3_USE_SSL && c.S3_CA !== '' ? { ca: c.S3_CA } : {}),
  };
}

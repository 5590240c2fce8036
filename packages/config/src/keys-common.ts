import { key } from './key-spec.js';
import type { KeySpec } from './key-spec.js';
import { flag, integer, oneOf, port, text, type ItemRule } from './value-kinds.js';

/** An AMQP exchange or queue name part (RabbitMQ allows up to 255 bytes; we keep it readable). */
const amqpNameRule: ItemRule = {
  expects: 'letters, digits, ".", "_" or "-" (at most 200)',
  accepts: (item) => /^[A-Za-z0-9._-]{0,200}$/.test(item),
};

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** pino levels plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Keys every service reads (HTTP_PORT too, but its default differs per service: see {@link httpPortKey}). */
export const commonKeys = {
  RABBIT_HOSTNAME: key(text(), 'localhost', 'RabbitMQ host name.'),
  RABBIT_PORT: key(port, 5672, 'RabbitMQ AMQP port.'),
  RABBIT_USERNAME: key(text(), 'guest', 'RabbitMQ user name.'),
  RABBIT_PASSWORD: key(text(), 'guest', 'RabbitMQ password.', { sensitive: true }),
  RABBIT_EXCHANGE: key(
    text({ ...amqpNameRule, accepts: (item) => item !== '' && amqpNameRule.accepts(item) }),
    'dicomflow',
    'Topic exchange every service publishes to and consumes from; dead letters go to "<name>.dead". Change it only to run an isolated copy beside another (tests).',
  ),
  RABBIT_QUEUE_PREFIX: key(
    text(amqpNameRule),
    '',
    'Prepended to the name of every work queue (fingerprinter.*, scheduler.*, jobs.*, sender.*, flow-tracker.*), to run an isolated copy beside another (tests); every service must use the same prefix.',
  ),
  RABBIT_TLS: key(
    flag,
    false,
    "Connect to RabbitMQ over TLS (AMQPS; RabbitMQ's TLS port is usually 5671: set RABBIT_PORT). The server certificate must be valid for RABBIT_HOSTNAME (or RABBIT_TLS_SERVERNAME).",
  ),
  RABBIT_TLS_CA: key(
    text(),
    '',
    "PEM file of the CA(s) RabbitMQ's certificate must chain to, when RABBIT_TLS is on ('' = the system's trusted CAs).",
  ),
  RABBIT_TLS_CERT: key(
    text(),
    '',
    "PEM client certificate to present to RabbitMQ, when RABBIT_TLS is on and RabbitMQ asks for one ('' = none; needs RABBIT_TLS_KEY).",
  ),
  RABBIT_TLS_KEY: key(text(), '', "PEM private key of RABBIT_TLS_CERT ('' = none)."),
  RABBIT_TLS_SERVERNAME: key(
    text(),
    '',
    "Name RabbitMQ's certificate is checked against (and sent as SNI) ('' = RABBIT_HOSTNAME).",
  ),
  DB_HOST: key(text(), 'localhost', 'PostgreSQL host name.'),
  DB_PORT: key(port, 5432, 'PostgreSQL port.'),
  DB_NAME: key(text(), 'dicomflow', 'PostgreSQL database name.'),
  DB_USER: key(text(), 'dicomflow', 'PostgreSQL user name.'),
  DB_PASS: key(text(), '', 'PostgreSQL password.', { sensitive: true }),
  DB_SSL: key(
    flag,
    false,
    "Connect to PostgreSQL over SSL/TLS, with the server's certificate checked against the CA and DB_HOST (libpq's sslmode=verify-full).",
  ),
  DB_SSL_CA: key(
    text(),
    '',
    "PEM file of the CA(s) PostgreSQL's certificate must chain to, when DB_SSL is on ('' = the system's trusted CAs).",
  ),
  DB_SSL_CERT: key(
    text(),
    '',
    "PEM client certificate to present to PostgreSQL (for pg_hba.conf `cert` or `clientcert=verify-full`), when DB_SSL is on ('' = none; needs DB_SSL_KEY).",
  ),
  DB_SSL_KEY: key(text(), '', "PEM private key of DB_SSL_CERT ('' = none)."),
  S3_ENDPOINT: key(text(), 'localhost', 'S3 (MinIO) host name, without scheme or port.'),
  S3_PORT: key(port, 9000, 'S3 (MinIO) port.'),
  S3_ACCESS_KEY: key(text(), 'minioadmin', 'S3 access key.', { sensitive: true }),
  S3_SECRET_KEY: key(text(), 'minioadmin', 'S3 secret key.', { sensitive: true }),
  S3_USE_SSL: key(flag, false, 'Use HTTPS to reach S3.'),
  S3_CA: key(
    text(),
    '',
    "PEM file of the CA(s) the S3 server's certificate must chain to, when S3_USE_SSL is on ('' = the system's trusted CAs).",
  ),
  S3_PART_SIZE: key(
    integer(5 * MIB, 5 * GIB),
    64 * MIB,
    'Multipart upload part size in bytes (5 MiB to 5 GiB); uploads up to this size go in one request.',
  ),
  S3_BUCKET_INCOMING: key(text(), 'incoming', 'Bucket for received studies (tar + index).'),
  S3_BUCKET_RUNS: key(text(), 'runs', 'Bucket for model step outputs.'),
  S3_BUCKET_STATIC: key(text(), 'static', 'Bucket for static content (model weights).'),
  LOG_LEVEL: key(oneOf(LOG_LEVELS), 'info', `Log level: ${LOG_LEVELS.join(', ')}.`),
  HTTP_HOST: key(text(), '0.0.0.0', 'Address the health/metrics/API HTTP server binds to.'),
};

/** Default HTTP port of each service (DESIGN.md "Every service"). */
export const HTTP_PORT_DEFAULTS = {
  storescp: 9101,
  fingerprinter: 9102,
  scheduler: 9103,
  consumer: 9104,
  sender: 9105,
  'static-storage': 8081,
  'flow-tracker': 8080,
} as const;

const httpPortDoc = `Port of the health/metrics/API HTTP server (0 = any free port). Default per service: ${Object.entries(
  HTTP_PORT_DEFAULTS,
)
  .map(([service, value]) => `${service} ${value}`)
  .join(', ')}.`;

/** HTTP_PORT with the given service's default; the doc is the same for every service. */
export function httpPortKey(defaultPort: number): KeySpec<number> {
  return key(port, defaultPort, httpPortDoc);
}

/** How a failure should be handled by a message consumer or an HTTP handler. */
export type ErrorKind = 'permanent' | 'transient' | 'gone';

interface ErrorOptionsWithCause {
  cause?: unknown;
}

/** Retrying cannot help (bad input, invalid message): dead-letter it; HTTP 400. */
export class PermanentError extends Error {
  readonly kind = 'permanent';
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/** May succeed later (a peer is down, a timeout): retry with backoff; HTTP 500. */
export class TransientError extends Error {
  readonly kind = 'transient';
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/** The thing the work refers to no longer exists (deleted run, expired object): ack and log; HTTP 404. */
export class GoneError extends Error {
  readonly kind = 'gone';
  constructor(message: string, options?: ErrorOptionsWithCause) {
    super(message, options);
    this.name = 'GoneError';
  }
}

const KINDS: ReadonlySet<unknown> = new Set<ErrorKind>(['permanent', 'transient', 'gone']);

/**
 * The kind of any thrown value, read from its `kind` property so that errors from other copies of
 * this package (or hand-made ones) classify too. Anything unknown is `transient`: retrying an error
 * we do not understand is safer than dropping the message.
 */
export function errorKind(err: unknown): ErrorKind {
  if (typeof err === 'object' && err !== null && 'kind' in err && KINDS.has(err.kind)) {
    return err.kind as ErrorKind;
  }
  return 'transient';
}

/** Socket and name-lookup codes of a server that does not answer (down, restarting, unreachable). */
const OUTAGE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** PostgreSQL SQLSTATEs of a server that is going away or not accepting connections yet. */
const POSTGRES_OUTAGE = /^(08...|57P0[1-3])$/;

/** pg's own words for a connection that the server or the network ended. */
const DRIVER_OUTAGE = /^(Connection terminated|Connection ended|terminating connection)/;

/**
 * True when `err` (or an error in its cause chain) says a server this service depends on is unreachable
 * or restarting, rather than that the work itself failed: the database, S3, the broker or the Docker
 * engine being down for a while. A consumer retries such a message for as long as the outage lasts
 * instead of counting it as a failed attempt (see the broker's outcomeOfFailure).
 */
export function isOutage(err: unknown): boolean {
  for (
    let current: unknown = err, depth = 0;
    depth < 8 && typeof current === 'object' && current !== null;
    depth++
  ) {
    const { code, message, syscall } = current as { code?: unknown; message?: unknown; syscall?: unknown };
    if (typeof code === 'string' && (OUTAGE_CODES.has(code) || POSTGRES_OUTAGE.test(code))) return true;
    // A Unix socket (the Docker engine's) that is not there while its server restarts; any other
    // missing file is not an outage.
    if (code === 'ENOENT' && syscall === 'connect') return true;
    if (typeof message === 'string' && DRIVER_OUTAGE.test(message)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

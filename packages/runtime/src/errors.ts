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

import type { SendFailureReason } from '@dicomflow/messages';

/**
 * A STOW-RS request (or what it needs) failed as a whole. Transient ones are retried with backoff like a
 * failed association; a permanent one ends the target at once with `reason`.
 */
export class StowError extends Error {
  override readonly name = 'StowError';

  constructor(
    message: string,
    readonly opts: {
      readonly transient: boolean;
      /** As `send.retrying` shows it: `ECONNREFUSED`, `timeout`, `HTTP 503`, `HTTP 401`, `token` ... */
      readonly code: string;
      /** Why the target failed, when the error is permanent. */
      readonly reason?: SendFailureReason;
      /** A reused keep-alive connection the server had closed: worth one immediate new try. */
      readonly staleConnection?: boolean;
      readonly cause?: unknown;
    },
  ) {
    super(message, opts.cause === undefined ? {} : { cause: opts.cause });
  }

  get transient(): boolean {
    return this.opts.transient;
  }

  get code(): string {
    return this.opts.code;
  }
}

/** A spooled file could not be read while it was being sent: a local failure, never the server's. */
export class SpoolReadError extends Error {
  override readonly name = 'SpoolReadError';
}

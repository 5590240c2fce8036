// Local stand-ins for @dicomflow/runtime's error classes and backoff until the broker imports them from
// there. Errors are classified by their `kind` property, so runtime's classes classify the same way.

/** How a failed message is handled: dead-lettered at once, retried with backoff, or acked and dropped. */
export type ErrorKind = 'permanent' | 'transient' | 'gone';

/** Retrying cannot help (invalid message, bad input): the message is dead-lettered at once. */
export class PermanentError extends Error {
  readonly kind = 'permanent';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/** May succeed later (a peer is down, a timeout): the message is retried with backoff. */
export class TransientError extends Error {
  readonly kind = 'transient';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/** What the message refers to no longer exists: the message is acked and logged. */
export class GoneError extends Error {
  readonly kind = 'gone';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GoneError';
  }
}

const KINDS: ReadonlySet<unknown> = new Set<ErrorKind>(['permanent', 'transient', 'gone']);

/**
 * The kind of any thrown value, read from its `kind` property (duck typing, so errors from other packages
 * classify too). Anything else is `transient`: retrying an unknown error a bounded number of times is safer
 * than dropping the message.
 */
export function errorKind(err: unknown): ErrorKind {
  if (typeof err === 'object' && err !== null && 'kind' in err && KINDS.has(err.kind)) {
    return err.kind as ErrorKind;
  }
  return 'transient';
}

/** `Name: message` of any thrown value, for logs and dead-letter headers. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * Delay before retry number `attempt` (1 = first): `initialMs * 2^(attempt-1)` capped at `maxMs`; with
 * `jitter`, uniformly random in [0, that], so replicas reconnecting together spread out.
 */
export function computeBackoff(
  attempt: number,
  opts: { initialMs: number; maxMs: number; jitter?: boolean },
): number {
  const step = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  const capped = Math.min(Math.max(0, opts.maxMs), Math.max(0, opts.initialMs) * 2 ** (step - 1));
  return opts.jitter ? Math.floor(Math.random() * (capped + 1)) : capped;
}

import { constants } from 'node:os';
import { StoreScuError } from '@dicomflow/dicom';
import type { SendFailureReason, SendRetryError } from '@dicomflow/messages';
import { StowError } from './stow-error.js';

/** getaddrinfo's codes: not errno values, so not in `os.constants.errno`. */
const DNS_CODES: ReadonlySet<string> = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'ENODATA',
]);
const ERRNO_CODES: ReadonlySet<string> = new Set(Object.keys(constants.errno));

/** Node's system error text: `<syscall> <CODE>` (`connect ECONNREFUSED 10.0.0.9:104`, `read ECONNRESET`). */
const SYSTEM_ERROR = /\b[a-z_]+ (E[A-Z0-9_]{2,})\b/g;

/**
 * Why an association failed, as a code and words: the system error code when a socket error ended it
 * (`ECONNREFUSED`, `EHOSTUNREACH`, `ENOTFOUND` ...), else the kind of failure (`timeout`, `aborted`,
 * `rejected`, `connect`). StoreScuError keeps the socket error only in its message, so the code is read
 * from there, and only a name Node knows as a system error code is taken (never a host name in capitals).
 */
export function associationFailure(err: StoreScuError): SendRetryError {
  for (const match of err.message.matchAll(SYSTEM_ERROR)) {
    const code = match[1];
    if (code !== undefined && (ERRNO_CODES.has(code) || DNS_CODES.has(code)))
      return { code, message: err.message };
  }
  return { code: err.code, message: err.message };
}

/** Why instances were deferred: the DICOM status the node answered (`0xA700`) and its text. */
export function statusFailure(status: number, text: string): SendRetryError {
  return { code: `0x${status.toString(16).toUpperCase().padStart(4, '0')}`, message: text };
}

/** Why a round at a target failed, and whether another round may help. */
export interface TargetFailure {
  readonly transient: boolean;
  /** The target's outcome reason when the failure is permanent. */
  readonly reason: SendFailureReason;
  readonly error: SendRetryError;
}

/**
 * A failed association (StoreScuError) or STOW-RS request (StowError) as a {@link TargetFailure};
 * undefined for anything else (the sender stopping, the download failing, a local error), which ends the
 * delivery instead (the message is retried).
 */
export function targetFailure(err: unknown): TargetFailure | undefined {
  if (err instanceof StoreScuError)
    return { transient: err.transient, reason: 'rejected', error: associationFailure(err) };
  if (err instanceof StowError)
    return {
      transient: err.transient,
      reason: err.opts.reason ?? 'rejected',
      error: { code: err.code, message: err.message },
    };
  return undefined;
}

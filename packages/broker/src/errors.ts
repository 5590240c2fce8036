// The error kinds and backoff are @dicomflow/runtime's; errors are classified by their `kind` property
// (errorKind), so errors from any copy of the runtime package, or hand-made ones, classify the same.
export {
  computeBackoff,
  errorKind,
  GoneError,
  isOutage,
  PermanentError,
  TransientError,
  type ErrorKind,
} from '@dicomflow/runtime';

/** `Name: message` of any thrown value, for logs and dead-letter headers. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

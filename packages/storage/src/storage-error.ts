/** How a storage failure should be handled: retry later, give up, or treat the object as no longer there. */
export type StorageErrorKind = 'transient' | 'permanent' | 'gone';

/** Where a failed storage call pointed, kept on the error for logs. */
export interface StorageErrorContext {
  readonly operation: string;
  readonly bucket?: string | undefined;
  readonly key?: string | undefined;
}

interface StorageErrorOptions extends Partial<StorageErrorContext> {
  readonly cause?: unknown;
  /** The S3 error code (e.g. `NoSuchKey`) or system error code (e.g. `ECONNREFUSED`), when there is one. */
  readonly code?: string | undefined;
}

/**
 * A failed storage call. `kind` follows the same convention as the runtime package's errors, so a consumer
 * can decide between retry, dead-letter and "object gone" without knowing S3 error codes.
 */
export class StorageError extends Error {
  readonly kind: StorageErrorKind;
  readonly code: string | undefined;
  readonly operation: string | undefined;
  readonly bucket: string | undefined;
  readonly key: string | undefined;

  constructor(kind: StorageErrorKind, message: string, options: StorageErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'StorageError';
    this.kind = kind;
    this.code = options.code;
    this.operation = options.operation;
    this.bucket = options.bucket;
    this.key = options.key;
  }
}

// The addressed bucket or object does not exist (any more): retrying will not bring it back.
const GONE_CODES: ReadonlySet<string> = new Set([
  'NoSuchKey',
  'NotFound',
  'NoSuchBucket',
  'NoSuchUpload',
  'NoSuchVersion',
]);

// Requests that are wrong as sent (credentials, names, arguments): the same request will fail again.
const PERMANENT_CODES: ReadonlySet<string> = new Set([
  'AccessDenied',
  'AccountProblem',
  'AllAccessDisabled',
  'BucketAlreadyExists',
  'EntityTooLarge',
  'EntityTooSmall',
  'IncompleteBody',
  'InvalidAccessKeyId',
  'InvalidArgument',
  'InvalidBucketName',
  'InvalidDigest',
  'InvalidObjectName',
  'InvalidRange',
  'InvalidRequest',
  'KeyTooLongError',
  'MalformedXML',
  'MetadataTooLarge',
  'MethodNotAllowed',
  'MissingContentLength',
  'NotImplemented',
  'SignatureDoesNotMatch',
  'BadDigest',
]);

// Errors raised by the minio client itself before sending anything (argument checks).
const PERMANENT_CLIENT_ERRORS: ReadonlySet<string> = new Set([
  'InvalidArgumentError',
  'InvalidBucketNameError',
  'InvalidObjectNameError',
  'InvalidPortError',
  'InvalidEndpointError',
  'InvalidPrefixError',
  'AccessKeyRequiredError',
  'SecretKeyRequiredError',
  'IncorrectSizeError',
  'IsValidBucketNameError',
]);

function stringProperty(value: unknown, name: string): string | undefined {
  if (typeof value !== 'object' || value === null || !(name in value)) return undefined;
  const property: unknown = (value as Record<string, unknown>)[name];
  return typeof property === 'string' && property !== '' ? property : undefined;
}

/** Classifies an error code or error class name; unknown failures are transient (retrying is the safe guess). */
export function kindOfCode(code: string | undefined, errorName?: string): StorageErrorKind {
  if (code !== undefined && GONE_CODES.has(code)) return 'gone';
  if (code !== undefined && PERMANENT_CODES.has(code)) return 'permanent';
  if (errorName !== undefined && PERMANENT_CLIENT_ERRORS.has(errorName)) return 'permanent';
  return 'transient';
}

/**
 * Wraps anything a storage call threw into a {@link StorageError}: S3 error codes, minio argument errors and
 * network errors (ECONNREFUSED, resets, 5xx after minio's own retry) each get their kind. A StorageError
 * passes through unchanged.
 */
export function toStorageError(err: unknown, context: StorageErrorContext): StorageError {
  if (err instanceof StorageError) return err;
  const code = stringProperty(err, 'code');
  const name = stringProperty(err, 'name');
  const detail = stringProperty(err, 'message') ?? code ?? String(err);
  const where = [context.bucket, context.key].filter((part) => part !== undefined).join('/');
  const message = `storage ${context.operation}${where === '' ? '' : ` ${where}`} failed: ${detail}`;
  return new StorageError(kindOfCode(code, name), message, { ...context, code, cause: err });
}

import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, InvalidBucketNameError, S3Error } from 'minio';
import { StorageError, toStorageError } from './storage-error.js';

function s3Error(code: string): Error {
  const err = new S3Error(`server said ${code}`);
  err.code = code;
  return err;
}

function systemError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:9`), { code });
}

const where = { operation: 'getStream', bucket: 'incoming', key: 'r1.tar' };

describe('toStorageError', () => {
  it.each([
    ['NoSuchKey', 'gone'],
    ['NotFound', 'gone'],
    ['NoSuchBucket', 'gone'],
    ['AccessDenied', 'permanent'],
    ['InvalidBucketName', 'permanent'],
    ['InvalidAccessKeyId', 'permanent'],
    ['SignatureDoesNotMatch', 'permanent'],
    ['SlowDown', 'transient'],
    ['InternalError', 'transient'],
    ['ServiceUnavailable', 'transient'],
  ])('maps S3 code %s to %s', (code, kind) => {
    const err = toStorageError(s3Error(code), where);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ kind, code, operation: 'getStream', bucket: 'incoming', key: 'r1.tar' });
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE'])(
    'maps network error %s to transient',
    (code) => {
      expect(toStorageError(systemError(code), where)).toMatchObject({ kind: 'transient', code });
    },
  );

  it('maps a 5xx that minio gave up on to transient', () => {
    expect(
      toStorageError(new Error('Request failed after 0 retries: Retryable HTTP status: 503'), where).kind,
    ).toBe('transient');
  });

  it("maps minio's own argument errors to permanent", () => {
    expect(toStorageError(new InvalidBucketNameError('Invalid bucket name: A_B'), where).kind).toBe(
      'permanent',
    );
    expect(toStorageError(new InvalidArgumentError('size cannot be negative'), where).kind).toBe('permanent');
  });

  it('keeps the cause and names the operation, bucket and key in the message', () => {
    const cause = s3Error('NoSuchKey');
    const err = toStorageError(cause, where);
    expect(err.cause).toBe(cause);
    expect(err.message).toBe('storage getStream incoming/r1.tar failed: server said NoSuchKey');
  });

  it('passes a StorageError through unchanged', () => {
    const original = new StorageError('permanent', 'too big', { code: 'ObjectTooLarge' });
    expect(toStorageError(original, where)).toBe(original);
  });

  it('treats a thrown non-error as transient', () => {
    expect(toStorageError('socket hang up', { operation: 'check' })).toMatchObject({
      kind: 'transient',
      message: 'storage check failed: socket hang up',
    });
  });
});

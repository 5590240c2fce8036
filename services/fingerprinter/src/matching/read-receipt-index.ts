import { validateReceiptIndex, type ReceiptIndex, type StudyReceived } from '@dicomflow/messages';
import { errorKind, GoneError, PermanentError, TransientError } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';

/**
 * Reads and validates the index object of a receipt. Failures carry their handling: the object (or its
 * bucket) is gone -> GoneError (nothing to match; the message is dropped); not JSON, not a receipt index,
 * or another receipt's -> PermanentError (dead-lettered); S3 unreachable -> TransientError (retried).
 */
export async function readReceiptIndex(
  storage: Pick<Storage, 'getBuffer'>,
  study: Pick<StudyReceived, 'receiptId' | 'bucket' | 'indexKey'>,
  maxBytes: number,
): Promise<ReceiptIndex> {
  const where = `${study.bucket}/${study.indexKey}`;
  let bytes: Buffer;
  try {
    bytes = await storage.getBuffer(study.bucket, study.indexKey, maxBytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    switch (errorKind(err)) {
      case 'gone':
        throw new GoneError(`receipt index ${where} does not exist: ${reason}`, { cause: err });
      case 'permanent':
        throw new PermanentError(`cannot read receipt index ${where}: ${reason}`, { cause: err });
      case 'transient':
        throw new TransientError(`cannot read receipt index ${where}: ${reason}`, { cause: err });
    }
  }
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    // Not the parser's message: V8 quotes the text around the error, which may hold patient data.
    const position = /at position (\d+)/.exec((err as Error).message)?.[1];
    throw new PermanentError(
      `receipt index ${where} is not JSON${position === undefined ? '' : ` (error at character ${position})`}`,
    );
  }
  const valid = validateReceiptIndex(data);
  if (!valid.ok) throw new PermanentError(`receipt index ${where} is invalid: ${valid.error}`);
  if (valid.value.receiptId !== study.receiptId) {
    throw new PermanentError(
      `receipt index ${where} belongs to receipt ${valid.value.receiptId}, not ${study.receiptId}`,
    );
  }
  return valid.value;
}

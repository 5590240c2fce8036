import type { Logger } from '@dicomflow/runtime';
import { errorKind, TransientError } from '@dicomflow/runtime';
import { readReceiptIndexLines, ReceiptIndexFormatError, type StudyReceived } from '@dicomflow/messages';
import type { Storage } from '@dicomflow/storage';
import { patientColumnOfNames, patientNameOf, type PatientColumnMode } from './patient-column.js';

/** More distinct patient names than this in one receipt is not one patient's study: the column says so. */
const MAX_DISTINCT_NAMES = 100;

/**
 * The patient column of a receipt: read from its index object in S3 only when PATIENT_COLUMN asks for it,
 * streamed line by line (only the distinct names are kept). An index that is gone or unreadable leaves
 * the column empty (the receipt is still recorded: the manifest must not lose it); S3 being unreachable is
 * a TransientError (the event is retried).
 */
export async function readPatientColumn(
  storage: Pick<Storage, 'getStream'>,
  received: Pick<StudyReceived, 'bucket' | 'indexKey'>,
  options: { mode: PatientColumnMode; pseudonymKey: string; logger: Logger },
): Promise<string> {
  if (options.mode === 'none') return '';
  const names = new Set<string>();
  try {
    const source = await storage.getStream(received.bucket, received.indexKey);
    for await (const record of readReceiptIndexLines(source)) {
      if (!('instance' in record)) continue;
      const name = patientNameOf(record.instance.elements);
      if (name !== undefined && name.trim() !== '' && names.size < MAX_DISTINCT_NAMES) names.add(name);
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (!(err instanceof ReceiptIndexFormatError) && errorKind(err) === 'transient')
      throw new TransientError(`cannot read receipt index ${received.indexKey}: ${reason}`, { cause: err });
    // ReceiptIndexFormatError says which line and why, never what the line holds.
    options.logger.warn(
      { indexKey: received.indexKey, err: reason },
      'receipt index unreadable; patient column left empty',
    );
    return '';
  }
  return patientColumnOfNames(names, options.mode, options.pseudonymKey);
}

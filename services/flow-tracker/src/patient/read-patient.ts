import type { Logger } from '@dicomflow/runtime';
import { errorKind, TransientError } from '@dicomflow/runtime';
import type { StudyReceived } from '@dicomflow/messages';
import type { Storage } from '@dicomflow/storage';
import { patientColumn, type PatientColumnMode } from './patient-column.js';

/** Largest receipt index read for the patient column; a bigger one leaves the column empty. */
export const MAX_INDEX_BYTES = 256 * 1024 * 1024;

/**
 * The patient column of a receipt: read from its index object in S3 only when PATIENT_COLUMN asks for it.
 * An index that is gone or unreadable leaves the column empty (the receipt is still recorded: the manifest
 * must not lose it); S3 being unreachable is a TransientError (the event is retried).
 */
export async function readPatientColumn(
  storage: Pick<Storage, 'getBuffer'>,
  received: Pick<StudyReceived, 'bucket' | 'indexKey'>,
  options: { mode: PatientColumnMode; pseudonymKey: string; logger: Logger },
): Promise<string> {
  if (options.mode === 'none') return '';
  let bytes: Buffer;
  try {
    bytes = await storage.getBuffer(received.bucket, received.indexKey, MAX_INDEX_BYTES);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (errorKind(err) === 'transient')
      throw new TransientError(`cannot read receipt index ${received.indexKey}: ${reason}`, { cause: err });
    options.logger.warn(
      { indexKey: received.indexKey, err: reason },
      'receipt index unreadable; patient column left empty',
    );
    return '';
  }
  let index: unknown;
  try {
    index = JSON.parse(bytes.toString('utf8'));
  } catch {
    // The parser's message quotes the text around the error, which may hold patient data.
    options.logger.warn(
      { indexKey: received.indexKey },
      'receipt index is not JSON; patient column left empty',
    );
    return '';
  }
  const instances =
    typeof index === 'object' && index !== null && 'instances' in index ? index.instances : undefined;
  if (!Array.isArray(instances)) {
    options.logger.warn(
      { indexKey: received.indexKey },
      'receipt index has no instances; patient column left empty',
    );
    return '';
  }
  const usable = instances.filter(
    (i: unknown): i is { elements: Record<string, unknown> } =>
      typeof i === 'object' &&
      i !== null &&
      'elements' in i &&
      typeof i.elements === 'object' &&
      i.elements !== null,
  );
  return patientColumn({ instances: usable }, options.mode, options.pseudonymKey);
}

import type { Job, ObjectLocation } from '@dicomflow/messages';
import type { Logger } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';

/** Where a step's log excerpt is stored: beside its output, in the runs bucket. */
export function logLocation(job: Job): ObjectLocation {
  return { bucket: job.output.bucket, key: `${job.runId}/${job.step}/log.txt` };
}

/**
 * Stores the end of the model's log beside its output, for the tracker (never in a message: a model may
 * print patient data). Best effort: a run is not retried for its log, so a failure is logged and the
 * step shows no log.
 */
export async function storeStepLog(
  deps: { readonly storage: Pick<Storage, 'putBuffer'>; readonly logger: Logger },
  job: Job,
  logExcerpt: string,
): Promise<ObjectLocation | undefined> {
  if (logExcerpt === '') return undefined;
  const location = logLocation(job);
  try {
    await deps.storage.putBuffer(location.bucket, location.key, Buffer.from(logExcerpt), 'text/plain');
    return location;
  } catch (err) {
    deps.logger.warn(
      { err: err instanceof Error ? err.message : String(err), key: location.key },
      'cannot store the model log; the step shows none',
    );
    return undefined;
  }
}

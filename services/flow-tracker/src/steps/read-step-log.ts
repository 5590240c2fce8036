import type { JobFailed, JobFinished } from '@dicomflow/messages';
import { errorKind, TransientError, type Logger } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';

/** The consumer stores at most 16 KiB of a log; anything far larger at that key is not one of its logs. */
const MAX_LOG_BYTES = 64 * 1024;

/**
 * The log excerpt of a finished or failed step, read from where the consumer stored it (`log` in the
 * message), so that it lands in the tracker's database without ever travelling on the bus. A log that is
 * gone leaves the step without one (the event is still recorded); S3 being unreachable is a
 * TransientError (the event is retried). The text is never logged: a model may print patient data.
 */
export async function readStepLog(
  storage: Pick<Storage, 'getBuffer'>,
  body: Pick<JobFinished | JobFailed, 'log' | 'logExcerpt'>,
  logger: Logger,
): Promise<string | undefined> {
  if (body.log === undefined) return body.logExcerpt;
  try {
    return (await storage.getBuffer(body.log.bucket, body.log.key, MAX_LOG_BYTES)).toString('utf8');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (errorKind(err) === 'transient')
      throw new TransientError(`cannot read step log ${body.log.key}: ${reason}`, { cause: err });
    logger.warn({ key: body.log.key, err: reason }, 'step log unreadable; the step shows none');
    return undefined;
  }
}

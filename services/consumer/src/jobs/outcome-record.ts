import { posix } from 'node:path';
import { validateMessage, type Job, type JobFailed, type JobFinished } from '@dicomflow/messages';
import type { Storage } from '@dicomflow/storage';

/** The outcome of a job as published, kept next to its output so that a redelivery republishes it. */
export type OutcomeRecord =
  | { readonly routingKey: 'job.finished'; readonly body: JobFinished }
  | { readonly routingKey: 'job.failed'; readonly body: JobFailed };

/** `<runId>/<step>/outcome.json` beside the step's `output.tar` in the runs bucket. */
export function outcomeKey(job: Pick<Job, 'output'>): string {
  return `${posix.dirname(job.output.key)}/outcome.json`;
}

/** The recorded outcome of `job`, if an earlier delivery got that far (a malformed record counts as none). */
export async function readOutcome(
  storage: Pick<Storage, 'stat' | 'getBuffer'>,
  job: Job,
): Promise<OutcomeRecord | undefined> {
  const key = outcomeKey(job);
  if (!(await storage.stat(job.output.bucket, key))) return undefined;
  let data: unknown;
  try {
    data = JSON.parse((await storage.getBuffer(job.output.bucket, key, 1024 * 1024)).toString('utf8'));
  } catch {
    return undefined;
  }
  const record = data as { routingKey?: unknown; body?: unknown };
  if (record.routingKey !== 'job.finished' && record.routingKey !== 'job.failed') return undefined;
  const checked = validateMessage(record.routingKey, record.body);
  if (!checked.ok) return undefined;
  return { routingKey: record.routingKey, body: checked.value } as OutcomeRecord;
}

/** Records the outcome before it is published: from then on, a redelivery of the job only republishes it. */
export async function writeOutcome(
  storage: Pick<Storage, 'putBuffer'>,
  job: Job,
  record: OutcomeRecord,
): Promise<void> {
  await storage.putBuffer(job.output.bucket, outcomeKey(job), JSON.stringify(record), 'application/json');
}

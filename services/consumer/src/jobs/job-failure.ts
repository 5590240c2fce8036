import type { JobFailureReason } from '@dicomflow/messages';

/** Facts about the container run that a failure carries into `job.failed`. */
export interface FailureFacts {
  readonly exitCode?: number;
  readonly logExcerpt?: string;
}

/**
 * The job failed for good: retrying the same job cannot help (bad kwargs, exit code, timeout, refused
 * output, missing image). The consumer publishes `job.failed` with `reason` and acks the job.
 */
export class JobFailure extends Error {
  readonly kind = 'permanent';
  constructor(
    readonly reason: JobFailureReason,
    message: string,
    readonly facts: FailureFacts = {},
  ) {
    super(message);
    this.name = 'JobFailure';
  }
}

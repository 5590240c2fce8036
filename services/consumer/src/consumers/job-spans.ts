import type { Job } from '@dicomflow/messages';
import { inSpan, recordSpan } from '@dicomflow/runtime';
import type { Slot } from '../docker/create-options.js';
import type { JobTimings } from '../jobs/exec-job.js';

/**
 * Runs one job delivery in a `job` span, whose first child is the job's `queue wait`: from its dispatch to
 * now. The dispatch time is the job's `dispatchedAt` (milliseconds; the AMQP timestamp has only seconds,
 * which would start the wait before the scheduler published it).
 */
export function jobSpan(job: Job, slot: Slot, work: () => Promise<void>): Promise<void> {
  const takenAt = Date.now();
  return inSpan(
    'job',
    {
      attributes: {
        'dicomflow.run_id': job.runId,
        'dicomflow.step': job.step,
        'dicomflow.image': job.model.docker_kwargs.image,
        'dicomflow.slot': slot.kind === 'gpu' ? `gpu:${slot.gpuId}` : `cpu:${slot.index}`,
        'dicomflow.priority': job.priority,
      },
    },
    () => {
      const dispatchedAt = Date.parse(job.dispatchedAt);
      if (!Number.isNaN(dispatchedAt) && dispatchedAt <= takenAt)
        recordSpan('queue wait', dispatchedAt, takenAt);
      return work();
    },
  );
}

/**
 * Records the phases of a job that ran, from its timings, as children of the active (`job`) span: `input
 * staging` and `container setup` (image, static volumes, creation; in work-folder mode the two overlap, as
 * they do in fact), `container` (started to exited) and `output upload` (exited to stored). Phases that did not happen are
 * left out.
 */
export function recordJobPhases(timings: JobTimings): void {
  const { steps, containerStartedAt, containerExitedAt, outputStoredAt } = timings;
  const prepared = steps.prepare ?? timings.takenAt;
  if (steps.input !== undefined) recordSpan('input staging', prepared, steps.input);
  // Image check or pull, static volumes and the container's creation: the gap before `container`.
  if (steps.create !== undefined) recordSpan('container setup', prepared, steps.create);
  if (containerStartedAt !== undefined && containerExitedAt !== undefined)
    recordSpan('container', containerStartedAt, containerExitedAt);
  if (containerExitedAt !== undefined && outputStoredAt !== undefined)
    recordSpan('output upload', containerExitedAt, outputStoredAt);
}

import {
  flowFailedMessageId,
  flowFinishedMessageId,
  jobMessageId,
  jobRoutingKey,
  type FlowFailed,
  type FlowFinished,
  type FlowMatched,
  type Job,
  type JobFailed,
  type JobInput,
  type MessageOf,
  type ObjectLocation,
} from '@dicomflow/messages';

/** Message priority of every message after a run's first job: started runs finish before new ones start. */
export const FOLLOW_UP_PRIORITY = 5;

/** The routing keys the scheduler publishes. */
export type DispatchKey = 'job.cpu' | 'job.gpu' | 'flow.finished' | 'flow.failed';

/** One message the scheduler publishes, fully decided before it is recorded and published. */
export type Dispatch = {
  [K in DispatchKey]: {
    /** Deterministic: a dispatch published again carries the same id. */
    readonly messageId: string;
    readonly runId: string;
    /** The job's step; undefined for a run outcome. */
    readonly step: number | undefined;
    readonly routingKey: K;
    readonly priority: number;
    readonly body: MessageOf<K>;
  };
}[DispatchKey];

/** What planning needs besides the run. */
export interface PlanContext {
  /** Bucket of the model step outputs (S3_BUCKET_RUNS). */
  readonly runsBucket: string;
  readonly now: Date;
}

/** Where step `step` of run `runId` writes its output: `<runId>/<step>/output.tar` in the runs bucket. */
export function stepOutput(runsBucket: string, runId: string, step: number): ObjectLocation {
  return { bucket: runsBucket, key: `${runId}/${step}/output.tar` };
}

/** The first message of a new run: its first job at the flow's priority, or its failure if it has no model. */
export function planFirst(run: FlowMatched, ctx: PlanContext): Dispatch {
  if (run.flow.models.length === 0) {
    return flowFailed(run, ctx, { reason: 'no-models', message: 'the flow has no models to run' });
  }
  const input: JobInput = {
    kind: 'receipt',
    bucket: run.bucket,
    tarKey: run.tarKey,
    indexKey: run.indexKey,
    members: run.members,
    tarSubdir: run.tarSubdir,
  };
  return job(run, 0, input, run.priority, ctx);
}

/**
 * What follows the end of step `step` whose output is at `output`: the next job at
 * {@link FOLLOW_UP_PRIORITY}, or the run's `flow.finished` after the last model.
 */
export function planAfterFinished(
  run: FlowMatched,
  step: number,
  output: ObjectLocation,
  ctx: PlanContext,
): Dispatch {
  const next = step + 1;
  if (next < run.flow.models.length) {
    return job(run, next, { kind: 'step', step, ...output }, FOLLOW_UP_PRIORITY, ctx);
  }
  const body: FlowFinished = {
    ...runFlow(run),
    finishedAt: ctx.now.toISOString(),
    stepCount: run.flow.models.length,
    output,
    destinations: run.flow.destinations,
    returnToSender: {
      host: run.callingHost,
      aeTitle: run.callingAeTitle,
      ports: run.flow.return_to_sender_on_ports,
    },
  };
  return {
    messageId: flowFinishedMessageId(run.runId),
    runId: run.runId,
    step: undefined,
    routingKey: 'flow.finished',
    priority: FOLLOW_UP_PRIORITY,
    body,
  };
}

/** The `flow.failed` that follows a failed job. */
export function planAfterFailed(run: FlowMatched, failed: JobFailed, ctx: PlanContext): Dispatch {
  return flowFailed(run, ctx, {
    step: failed.step,
    reason: failed.reason,
    message: failed.message,
    ...(failed.exitCode === undefined ? {} : { exitCode: failed.exitCode }),
  });
}

function job(run: FlowMatched, step: number, input: JobInput, priority: number, ctx: PlanContext): Dispatch {
  const model = run.flow.models[step];
  if (!model) throw new RangeError(`run ${run.runId} has no model ${step}`);
  const body: Job = {
    runId: run.runId,
    receiptId: run.receiptId,
    step,
    stepCount: run.flow.models.length,
    flowName: run.flow.name,
    flowVersion: run.flow.version,
    flowFile: run.flowFile,
    flowHash: run.flowHash,
    model,
    input,
    output: stepOutput(ctx.runsBucket, run.runId, step),
    priority,
    dispatchedAt: ctx.now.toISOString(),
  };
  return {
    messageId: jobMessageId(run.runId, step),
    runId: run.runId,
    step,
    routingKey: jobRoutingKey(model),
    priority,
    body,
  };
}

function flowFailed(
  run: FlowMatched,
  ctx: PlanContext,
  failure: Pick<FlowFailed, 'step' | 'reason' | 'message' | 'exitCode'>,
): Dispatch {
  const body: FlowFailed = { ...runFlow(run), failedAt: ctx.now.toISOString(), ...failure };
  return {
    messageId: flowFailedMessageId(run.runId),
    runId: run.runId,
    step: undefined,
    routingKey: 'flow.failed',
    priority: FOLLOW_UP_PRIORITY,
    body,
  };
}

function runFlow(
  run: FlowMatched,
): Pick<FlowFinished, 'runId' | 'receiptId' | 'flowName' | 'flowVersion' | 'flowFile'> {
  return {
    runId: run.runId,
    receiptId: run.receiptId,
    flowName: run.flow.name,
    flowVersion: run.flow.version,
    flowFile: run.flowFile,
  };
}

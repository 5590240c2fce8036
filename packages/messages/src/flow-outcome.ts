import { Type, type Static } from '@sinclair/typebox';
import { FlowDestination } from './destination.js';
import { JOB_FAILURE_REASONS, ObjectLocation, StepIndex } from './jobs.js';
import { Resend } from './recovery.js';
import { AeTitle, HostName, StringEnum } from './schema-parts.js';

const Uuid = Type.String({ format: 'uuid', maxLength: 36 });
const DateTime = Type.String({ format: 'date-time', maxLength: 64 });

/** What identifies a run's flow in every run outcome. */
const runFlow = {
  runId: Uuid,
  receiptId: Uuid,
  flowName: Type.String({ maxLength: 256 }),
  flowVersion: Type.String({ maxLength: 64 }),
  flowFile: Type.String({ minLength: 1, maxLength: 1024 }),
};

/** Where to return results to the sender of the study: its host and AE title, on each of `ports`. */
export const ReturnToSender = Type.Object(
  {
    host: HostName,
    aeTitle: AeTitle,
    /** The flow's `return_to_sender_on_ports`; empty: do not return anything. */
    ports: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 })),
  },
  { additionalProperties: false },
);
export type ReturnToSender = Static<typeof ReturnToSender>;

/**
 * `flow.finished`: every model of the run finished; `output` is the last model's output tar, to be sent to
 * `destinations` and back to the sender on `returnToSender.ports`. Message id `<runId>:flow.finished`.
 * With `resend`, it is an operator's request to deliver the output again (published by the flow-tracker,
 * message id `<runId>:resend:<resend.id>`, the run's first `flow.finished` otherwise unchanged).
 */
export const FlowFinished = Type.Object(
  {
    ...runFlow,
    finishedAt: DateTime,
    stepCount: Type.Integer({ minimum: 1, maximum: 10_000 }),
    output: ObjectLocation,
    destinations: Type.Array(FlowDestination),
    returnToSender: ReturnToSender,
    resend: Type.Optional(Resend),
  },
  { additionalProperties: false },
);
export type FlowFinished = Static<typeof FlowFinished>;

/** Why a run failed: a job's failure reason, or `no-models` for a flow without models. */
export const FLOW_FAILURE_REASONS = [...JOB_FAILURE_REASONS, 'no-models'] as const;
export type FlowFailureReason = (typeof FLOW_FAILURE_REASONS)[number];

/** `flow.failed`: the run stopped for good. Message id `<runId>:flow.failed`. */
export const FlowFailed = Type.Object(
  {
    ...runFlow,
    failedAt: DateTime,
    /** The step that failed; absent when the run failed before any job. */
    step: Type.Optional(StepIndex),
    reason: StringEnum(FLOW_FAILURE_REASONS),
    /** What happened, for people (no patient data). */
    message: Type.String({ maxLength: 4096 }),
    exitCode: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);
export type FlowFailed = Static<typeof FlowFailed>;

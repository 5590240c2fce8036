import { Type, type Static } from '@sinclair/typebox';
import { AeTitle, BucketName, HostName, ObjectKey } from './schema-parts.js';

const Uuid = Type.String({ format: 'uuid', maxLength: 36 });
const DateTime = Type.String({ format: 'date-time', maxLength: 64 });

/**
 * An operator's request to deliver a finished run's output again (`POST /runs/:id/resend` on the
 * flow-tracker). A `flow.finished` that carries it is a resend, not the run finishing: the sender keeps the
 * acknowledgements of each resend apart (so every instance goes out again) and tags its `send.*` events
 * with it, and the tracker takes the latest delivery (by `requestedAt`) for the run's status.
 */
export const Resend = Type.Object(
  {
    /** Identifies the resend; part of its message ids (`<runId>:resend:<id>`). */
    id: Uuid,
    requestedAt: DateTime,
  },
  { additionalProperties: false },
);
export type Resend = Static<typeof Resend>;

/**
 * `flow.rerun`: an operator asked to run a finished or failed run's flow again on the same receipt
 * (`POST /runs/:id/rerun` on the flow-tracker). The fingerprinter matches the receipt against the current
 * version of `flowFile` and publishes `flow.matched` for `runId` (a new run), or `flow.failed` for it when
 * the file is no longer loaded, no longer triggers, or the receipt is gone. Message id
 * `<rerunOf>:rerun:<rerunId>`; `correlationId` is the new run id.
 */
export const FlowRerun = Type.Object(
  {
    /** The new run (`rerunRunIdFor(rerunOf, rerunId)`). */
    runId: Uuid,
    /** The run it repeats. */
    rerunOf: Uuid,
    rerunId: Uuid,
    requestedAt: DateTime,
    receiptId: Uuid,
    /** The flow file of the repeated run; its current version runs. */
    flowFile: Type.String({ minLength: 1, maxLength: 1024 }),
    /** Name and version of the flow as the repeated run had it (until the new run matched). */
    flowName: Type.String({ maxLength: 256 }),
    flowVersion: Type.String({ maxLength: 64 }),
    /** The receipt, as `study.received` named it. */
    bucket: BucketName,
    tarKey: ObjectKey,
    indexKey: ObjectKey,
    /** The receiver's folder layout of the receipt (a flow's own `tar_subdir` overrides it). */
    tarSubdir: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
    callingAeTitle: AeTitle,
    callingHost: HostName,
  },
  { additionalProperties: false },
);
export type FlowRerun = Static<typeof FlowRerun>;

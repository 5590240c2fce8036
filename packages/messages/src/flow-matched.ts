import { Type, type Static } from '@sinclair/typebox';
import { CompleteFlowDefinition } from './flow-definition.js';
import { AeTitle, BucketName, HostName, ObjectKey } from './schema-parts.js';

const Uuid = Type.String({ format: 'uuid', maxLength: 36 });

/**
 * `flow.matched`: the fingerprinter found that a receipt triggers a flow and started a run. Carries the flow
 * as it was when it matched (later edits of the file do not change a run that started) and which of the
 * receipt's files the run takes. Published at the flow's priority; `correlationId` is the run id.
 */
export const FlowMatched = Type.Object(
  {
    /** Identifies the run; also the message's `correlationId`. */
    runId: Uuid,
    receiptId: Uuid,
    matchedAt: Type.String({ format: 'date-time', maxLength: 64 }),
    /** Name of the flow file in the flow directory (the flow's identity when it has no `name`). */
    flowFile: Type.String({ minLength: 1, maxLength: 1024 }),
    /** The flow definition at match time, every default filled in. */
    flow: CompleteFlowDefinition,
    /** sha256 (hex) of the canonical JSON of `flow` (`hashFlow` in @dicomflow/flows). */
    flowHash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    /** Where the receipt lives (from `study.received`). */
    bucket: BucketName,
    tarKey: ObjectKey,
    indexKey: ObjectKey,
    /** The receipt tar members the run takes: files that matched a trigger map and no exclusion. */
    members: Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { minItems: 1, maxItems: 100_000 }),
    /** Folder layout of the model input by tag keyword: the flow's `tar_subdir`, else the receiver's. */
    tarSubdir: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
    /** The flow's priority (0-5), also the message priority. */
    priority: Type.Integer({ minimum: 0, maximum: 5 }),
    /** The sender, for `return_to_sender_on_ports`. */
    callingAeTitle: AeTitle,
    callingHost: HostName,
  },
  { additionalProperties: false },
);
export type FlowMatched = Static<typeof FlowMatched>;

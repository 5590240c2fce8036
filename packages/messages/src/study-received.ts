import { Type, type Static } from '@sinclair/typebox';
import { AeTitle, BucketName, DicomUid, HostName, ObjectKey, StringEnum } from './schema-parts.js';

/** How storescp decides that a group of received instances is complete (DESIGN.md "Study completion"). */
export const GROUPINGS = ['association', 'study', 'series'] as const;

/** One of {@link GROUPINGS}. */
export type Grouping = (typeof GROUPINGS)[number];

/** Summary of one series inside a receipt. */
export const ReceivedSeries = Type.Object(
  {
    seriesInstanceUid: DicomUid,
    modality: Type.String({ maxLength: 16 }),
    instanceCount: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type ReceivedSeries = Static<typeof ReceivedSeries>;

/** Summary of one study inside a receipt. */
export const ReceivedStudy = Type.Object(
  {
    studyInstanceUid: DicomUid,
    series: Type.Array(ReceivedSeries, { maxItems: 10_000 }),
  },
  { additionalProperties: false },
);
export type ReceivedStudy = Static<typeof ReceivedStudy>;

/**
 * `study.received`: storescp completed a group of instances and stored it as one tar (plus its index) in S3.
 * Only a summary travels here; the per-instance elements used for matching are in the index object.
 */
export const StudyReceived = Type.Object(
  {
    /** Stable per completed group: a receipt published twice carries the same id. */
    receiptId: Type.String({ format: 'uuid', maxLength: 36 }),
    /** When the group completed. */
    receivedAt: Type.String({ format: 'date-time', maxLength: 64 }),
    grouping: StringEnum(GROUPINGS),
    /** Who sent it, so results can be returned to the sender. */
    callingAeTitle: AeTitle,
    calledAeTitle: AeTitle,
    callingHost: HostName,
    bucket: BucketName,
    /** Conventionally `incoming/<receiptId>.tar`. */
    tarKey: ObjectKey,
    /** Conventionally `<receiptId>.index.jsonl`: the receipt index, JSON Lines (receipt-index-lines.ts). */
    indexKey: ObjectKey,
    tarSize: Type.Integer({ minimum: 0 }),
    /** Folder layout used for the tar members (tag keywords, e.g. StudyInstanceUID). */
    tarSubdir: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
    instanceCount: Type.Integer({ minimum: 0 }),
    studies: Type.Array(ReceivedStudy, { maxItems: 10_000 }),
  },
  { additionalProperties: false },
);
export type StudyReceived = Static<typeof StudyReceived>;

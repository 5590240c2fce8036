import { Type, type Static } from '@sinclair/typebox';
import { DicomUid } from './schema-parts.js';

/** One instance of a receipt, as listed in its index object. */
export const ReceiptIndexInstance = Type.Object(
  {
    /** Name of the instance's member inside the receipt tar. */
    member: Type.String({ minLength: 1, maxLength: 1024 }),
    size: Type.Integer({ minimum: 0 }),
    sopClassUid: DicomUid,
    sopInstanceUid: DicomUid,
    studyInstanceUid: DicomUid,
    seriesInstanceUid: DicomUid,
    transferSyntaxUid: DicomUid,
    /** Top-level non-bulk elements in the DICOM JSON model (PS3.18 F.2), keyed by `GGGGEEEE`. */
    elements: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
);
export type ReceiptIndexInstance = Static<typeof ReceiptIndexInstance>;

/**
 * The first line of a receipt index (`<receiptId>.index.jsonl`, JSON Lines: this header, then one
 * {@link ReceiptIndexInstance} per line; see receipt-index-lines.ts). Not a message; shared by storescp and
 * its readers.
 */
export const ReceiptIndexHeader = Type.Object(
  {
    receiptId: Type.String({ format: 'uuid', maxLength: 36 }),
    /** How many instance lines follow: a reader that finds fewer knows the index was cut short. */
    instanceCount: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type ReceiptIndexHeader = Static<typeof ReceiptIndexHeader>;

/**
 * A whole receipt index in memory: what tests and tools build and read. Services write and read the index
 * line by line and never hold one whole.
 */
export const ReceiptIndex = Type.Object(
  {
    receiptId: Type.String({ format: 'uuid', maxLength: 36 }),
    instances: Type.Array(ReceiptIndexInstance),
  },
  { additionalProperties: false },
);
export type ReceiptIndex = Static<typeof ReceiptIndex>;

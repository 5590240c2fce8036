import type { DataSource } from 'typeorm';
import {
  readReceiptIndexLines,
  ReceiptIndexFormatError,
  type ReceiptIndexInstance,
  type StudyReceived,
} from '@dicomflow/messages';
import { errorKind, TransientError, type Logger } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';
import { ReceivedInstanceEntity } from '../db/entities.js';
import { quotedTable } from './quoted-table.js';

/** Rows per INSERT: a 20 000-instance receipt is 40 statements, and memory holds one batch at a time. */
export const INSTANCE_BATCH = 500;

/**
 * Records which instances a receipt brought, read line by line from its index in S3 and inserted in
 * batches (never the whole index in memory). Idempotent: a redelivered `study.received` inserts nothing
 * twice. Resolves with whether the receipt's instances are all recorded; an index that is gone or not an
 * index leaves none (partial rows are removed, so the manifest falls back to the receipt's own counts);
 * S3 being unreachable is a TransientError (the event is retried).
 */
export async function recordReceivedInstances(
  dataSource: DataSource,
  storage: Pick<Storage, 'getStream'>,
  received: Pick<StudyReceived, 'receiptId' | 'bucket' | 'indexKey'>,
  logger: Logger,
): Promise<boolean> {
  const table = quotedTable(dataSource, ReceivedInstanceEntity);
  let batch: ReceiptIndexInstance[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    await dataSource.query(
      `INSERT INTO ${table} (receipt_id, sop_instance_uid, study_instance_uid, series_instance_uid, sop_class_uid)
       SELECT $1::uuid, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
       ON CONFLICT (receipt_id, sop_instance_uid) DO NOTHING`,
      [
        received.receiptId,
        rows.map((r) => r.sopInstanceUid),
        rows.map((r) => r.studyInstanceUid),
        rows.map((r) => r.seriesInstanceUid),
        rows.map((r) => r.sopClassUid),
      ],
    );
  };
  try {
    const source = await storage.getStream(received.bucket, received.indexKey);
    for await (const record of readReceiptIndexLines(source)) {
      if (!('instance' in record)) continue;
      batch.push(record.instance);
      if (batch.length >= INSTANCE_BATCH) await flush();
    }
    await flush();
    return true;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (!(err instanceof ReceiptIndexFormatError) && errorKind(err) === 'transient')
      throw new TransientError(`cannot read receipt index ${received.indexKey}: ${reason}`, { cause: err });
    // ReceiptIndexFormatError says which line and why, never what the line holds.
    logger.warn(
      { indexKey: received.indexKey, err: reason },
      'receipt index unreadable; its instances are not recorded',
    );
    await dataSource.query(`DELETE FROM ${table} WHERE receipt_id = $1`, [received.receiptId]);
    return false;
  }
}

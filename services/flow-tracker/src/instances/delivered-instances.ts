import type { DataSource } from 'typeorm';
import {
  readDeliveredLines,
  ReceiptIndexFormatError,
  type DeliveredInstanceLine,
  type SendFinished,
} from '@dicomflow/messages';
import { errorKind, TransientError, type Logger } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';
import { DeliveredInstanceEntity, RunEntity } from '../db/entities.js';
import { INSTANCE_BATCH } from './received-instances.js';
import { quotedTable } from './quoted-table.js';

/**
 * Records which instances a delivery got acknowledged by which destination, from the delivered manifest
 * `send.finished` names (read line by line, inserted in batches). The sender delivers the output of the
 * run's last step, so that step produced every one of them. Idempotent (a redelivered event inserts
 * nothing twice). A manifest that is gone or malformed records nothing (the event stays recorded); S3 being
 * unreachable is a TransientError (the event is retried). Resolves with the number of lines read.
 */
export async function recordDeliveredInstances(
  dataSource: DataSource,
  storage: Pick<Storage, 'getStream'>,
  finished: Pick<SendFinished, 'runId' | 'finishedAt' | 'resend' | 'delivered'>,
  logger: Logger,
): Promise<number> {
  const manifest = finished.delivered;
  if (manifest === undefined) return 0;
  const run = await dataSource.getRepository(RunEntity).findOne({ where: { id: finished.runId } });
  // The run row exists: the event was recorded (and its run rebuilt) before this is called.
  if (!run) return 0;
  const step = Math.max((run.stepCount ?? 1) - 1, 0);
  const table = quotedTable(dataSource, DeliveredInstanceEntity);
  const resendId = finished.resend?.id ?? '';
  let batch: DeliveredInstanceLine[] = [];
  let count = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    await dataSource.query(
      `INSERT INTO ${table} (run_id, resend_id, step, delivered_at, sop_instance_uid, destination)
       SELECT $1::uuid, $2::text, $3::integer, $4::timestamptz, * FROM unnest($5::text[], $6::text[])
       ON CONFLICT (run_id, resend_id, destination, sop_instance_uid) DO NOTHING`,
      [
        finished.runId,
        resendId,
        step,
        new Date(finished.finishedAt),
        rows.map((r) => r.sopInstanceUid),
        rows.map((r) => r.target),
      ],
    );
  };
  try {
    const source = await storage.getStream(manifest.bucket, manifest.key);
    for await (const line of readDeliveredLines(source)) {
      batch.push(line);
      count++;
      if (batch.length >= INSTANCE_BATCH) await flush();
    }
    await flush();
    return count;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (!(err instanceof ReceiptIndexFormatError) && errorKind(err) === 'transient')
      throw new TransientError(`cannot read delivered manifest ${manifest.key}: ${reason}`, { cause: err });
    logger.warn({ key: manifest.key, err: reason }, 'delivered manifest unreadable; deliveries not recorded');
    return 0;
  }
}

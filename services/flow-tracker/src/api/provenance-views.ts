import { In, type DataSource } from 'typeorm';
import {
  DeliveredInstanceEntity,
  ReceiptEntity,
  ReceivedInstanceEntity,
  RunEntity,
  StepEntity,
  type DeliveredInstanceRow,
  type RunRow,
} from '../db/entities.js';
import { iso, span } from './run-views.js';
import { statusName } from './schemas.js';

/** An instance a run delivered, as the API shows it. */
function deliveredView(row: DeliveredInstanceRow): Record<string, unknown> {
  return {
    sopInstanceUid: row.sopInstanceUid,
    runId: row.runId,
    step: row.step,
    destination: row.destination,
    resendId: row.resendId === '' ? null : row.resendId,
    deliveredAt: row.deliveredAt.toISOString(),
  };
}

/**
 * The provenance of one run: the flow as it ran (file, version, content hash), its receipt and the
 * instances it brought, each step's image with the digest the engine ran, where and when it ran (consumer,
 * GPU, queue wait, start, end, exit code), and every instance it delivered where.
 */
export async function runProvenance(dataSource: DataSource, run: RunRow): Promise<Record<string, unknown>> {
  const [steps, receipt, received, delivered] = await Promise.all([
    dataSource.getRepository(StepEntity).find({ where: { runId: run.id }, order: { step: 'ASC' } }),
    run.receiptId === null
      ? null
      : dataSource.getRepository(ReceiptEntity).findOne({ where: { receiptId: run.receiptId } }),
    run.receiptId === null
      ? []
      : dataSource
          .getRepository(ReceivedInstanceEntity)
          .find({ where: { receiptId: run.receiptId }, order: { sopInstanceUid: 'ASC' } }),
    dataSource.getRepository(DeliveredInstanceEntity).find({
      where: { runId: run.id },
      order: { resendId: 'ASC', destination: 'ASC', sopInstanceUid: 'ASC' },
    }),
  ]);
  return {
    runId: run.id,
    status: run.status,
    statusName: statusName(run.status),
    flow: { name: run.name, version: run.version, file: run.flowFile, hash: run.flowHash },
    receipt: receipt
      ? {
          receiptId: receipt.receiptId,
          receivedAt: receipt.receivedAt.toISOString(),
          sender: `${receipt.callingAeTitle}@${receipt.callingHost}`,
          instanceCount: receipt.instanceCount,
        }
      : run.receiptId === null
        ? null
        : { receiptId: run.receiptId, receivedAt: null, sender: run.sender, instanceCount: null },
    received: iso(run.received),
    sent: iso(run.sent),
    steps: steps.map((s) => ({
      step: s.step,
      state: s.state,
      image: s.image,
      imageId: s.imageId,
      repoDigests: s.repoDigests,
      queue: s.queue,
      worker: s.worker,
      gpu: s.gpu,
      dispatched: iso(s.dispatched),
      start: iso(s.started),
      end: iso(s.ended),
      queueWaitMs: span(s.dispatched, s.started),
      runningMs: span(s.started, s.ended),
      exitCode: s.exitCode,
    })),
    receivedInstances: received.map((r) => ({
      sopInstanceUid: r.sopInstanceUid,
      studyInstanceUid: r.studyInstanceUid,
      seriesInstanceUid: r.seriesInstanceUid,
      sopClassUid: r.sopClassUid,
    })),
    deliveredInstances: delivered.map(deliveredView),
  };
}

/**
 * Where an instance came from and where it went: the receipts that brought it (and the runs they started),
 * the deliveries that sent it (run, step, destination), and the provenance of every run involved. Null when
 * the tracker knows no such instance.
 */
export async function instanceProvenance(
  dataSource: DataSource,
  sopInstanceUid: string,
): Promise<Record<string, unknown> | null> {
  const [received, delivered] = await Promise.all([
    dataSource.getRepository(ReceivedInstanceEntity).find({ where: { sopInstanceUid } }),
    dataSource.getRepository(DeliveredInstanceEntity).find({
      where: { sopInstanceUid },
      order: { deliveredAt: 'ASC', runId: 'ASC', destination: 'ASC' },
    }),
  ]);
  if (received.length === 0 && delivered.length === 0) return null;
  const receiptIds = [...new Set(received.map((r) => r.receiptId))];
  const [receipts, usedBy] = await Promise.all([
    receiptIds.length === 0
      ? []
      : dataSource.getRepository(ReceiptEntity).find({ where: { receiptId: In(receiptIds) } }),
    receiptIds.length === 0
      ? []
      : dataSource.getRepository(RunEntity).find({ where: { receiptId: In(receiptIds) } }),
  ]);
  const producedBy = [...new Set(delivered.map((d) => d.runId))];
  const runIds = [...new Set([...usedBy.map((r) => r.id), ...producedBy])];
  const runs =
    runIds.length === 0
      ? []
      : await dataSource
          .getRepository(RunEntity)
          .find({ where: { id: In(runIds) }, order: { ts: 'ASC', id: 'ASC' } });
  const receiptOf = new Map(receipts.map((r) => [r.receiptId, r]));
  return {
    sopInstanceUid,
    received: received
      .map((r) => {
        const receipt = receiptOf.get(r.receiptId);
        return {
          receiptId: r.receiptId,
          receivedAt: receipt ? receipt.receivedAt.toISOString() : null,
          sender: receipt ? `${receipt.callingAeTitle}@${receipt.callingHost}` : null,
          studyInstanceUid: r.studyInstanceUid,
          seriesInstanceUid: r.seriesInstanceUid,
          usedBy: usedBy
            .filter((run) => run.receiptId === r.receiptId)
            .map((run) => run.id)
            .sort(),
        };
      })
      .sort((a, b) => (a.receivedAt ?? '').localeCompare(b.receivedAt ?? '')),
    delivered: delivered.map(deliveredView),
    runs: await Promise.all(runs.map((run) => runProvenance(dataSource, run))),
  };
}

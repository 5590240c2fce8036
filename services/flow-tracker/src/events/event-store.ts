import type { DataSource, EntityManager } from 'typeorm';
import type { StudyReceived } from '@dicomflow/messages';
import {
  EventEntity,
  ReceiptEntity,
  RunEntity,
  SendRetryEntity,
  StepEntity,
  StudyEntity,
  StudyReceiptEntity,
  type ReceiptRow,
  type StudyReceiptRow,
} from '../db/entities.js';
import { seriesCountsOf } from '../instances/series-counts.js';
import { foldRun, type ReceiptFacts } from './fold-run.js';
import { receiptIdOf, runIdOf, storedBody, type TrackedEvent } from './tracked-event.js';

/** What recording an event did. */
export type RecordResult = 'recorded' | 'duplicate';

/**
 * Keeps every event once and rebuilds the rows it touches from all the events they came from, in the same
 * transaction. Concurrent handlers take advisory locks, a receipt's before a run's (always in that order),
 * so a run and the receipt it reads are never rebuilt from a half-seen state.
 */
export class EventStore {
  constructor(readonly dataSource: DataSource) {}

  /**
   * Records `event` under `eventKey` (its message id) unless that key was recorded before, and updates the
   * run row, its steps, or the study manifest. `patient` is the receipt's patient column (study.received).
   */
  async record(eventKey: string, event: TrackedEvent, patient = ''): Promise<RecordResult> {
    return this.dataSource.transaction('READ COMMITTED', async (manager) => {
      const runId = runIdOf(event);
      const receiptId = receiptIdOf(event);
      if (receiptId !== undefined) await lock(manager, `receipt:${receiptId}`);
      if (runId !== undefined) await lock(manager, `run:${runId}`);
      const inserted: unknown[] = await manager.query(
        `INSERT INTO ${table(manager, EventEntity)} (event_key, routing_key, run_id, receipt_id, body)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_key) DO NOTHING RETURNING event_key`,
        [eventKey, event.routingKey, runId ?? null, receiptId ?? null, JSON.stringify(storedBody(event))],
      );
      if (inserted.length === 0) return 'duplicate';
      if (event.routingKey === 'study.received') {
        await recordReceipt(manager, event.body, patient);
        for (const id of await runsOfReceipt(manager, event.body.receiptId)) {
          await lock(manager, `run:${id}`);
          await rebuildRun(manager, id);
        }
      } else if (runId !== undefined) {
        await rebuildRun(manager, runId);
      }
      return 'recorded';
    });
  }

  /**
   * Recounts the studies a receipt brought (after its instances were recorded: each SOP instance then
   * counts once per series, however many receipts brought it).
   */
  async recountStudiesOf(receiptId: string): Promise<void> {
    await this.dataSource.transaction('READ COMMITTED', async (manager) => {
      const rows = await manager.getRepository(StudyReceiptEntity).find({ where: { receiptId } });
      const studies = [...new Set(rows.map((row) => row.studyInstanceUid))].sort();
      for (const uid of studies) await lock(manager, `study:${uid}`);
      for (const uid of studies) await recountStudy(manager, uid);
    });
  }

  /** Readiness: the database answers. */
  async check(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }
}

async function lock(manager: EntityManager, name: string): Promise<void> {
  await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`dicomflow-tracker:${name}`]);
}

/** The quoted, schema-qualified table name of an entity. */
function table(manager: EntityManager, entity: Parameters<EntityManager['getRepository']>[0]): string {
  const metadata = manager.dataSource.getMetadata(entity);
  const schema = metadata.schema ?? 'public';
  return `"${schema}"."${metadata.tableName}"`;
}

async function runsOfReceipt(manager: EntityManager, receiptId: string): Promise<string[]> {
  const rows: { run_id: string }[] = await manager.query(
    `SELECT DISTINCT run_id FROM ${table(manager, EventEntity)} WHERE receipt_id = $1 AND run_id IS NOT NULL`,
    [receiptId],
  );
  return rows.map((r) => r.run_id).sort();
}

/** Rebuilds one run row, its steps and its targets' latest retries from every event of the run and its receipt. */
async function rebuildRun(manager: EntityManager, runId: string): Promise<void> {
  const events = await manager.getRepository(EventEntity).find({ where: { runId } });
  const tracked = events.map((e) => ({ routingKey: e.routingKey, body: e.body }) as TrackedEvent);
  const receiptId = tracked.map(receiptIdOf).find((id) => id !== undefined);
  const receipt =
    receiptId === undefined
      ? null
      : await manager.getRepository(ReceiptEntity).findOne({ where: { receiptId } });
  const firstRecorded = events.reduce<Date | undefined>(
    (first, e) => (!first || e.recordedAt < first ? e.recordedAt : first),
    undefined,
  );
  const { run, steps, retries } = foldRun(
    runId,
    tracked,
    receipt ? receiptFacts(receipt) : undefined,
    firstRecorded,
  );
  await manager.getRepository(RunEntity).upsert({ ...run, updatedAt: new Date() }, ['id']);
  if (steps.length > 0)
    await manager.getRepository(StepEntity).upsert(
      steps.map((step) => ({ ...step, runId })),
      ['runId', 'step'],
    );
  // Events are only ever added, so a target's row is only ever replaced by a later retry, never dropped.
  if (retries.length > 0) await manager.getRepository(SendRetryEntity).upsert(retries, ['runId', 'target']);
}

function receiptFacts(receipt: ReceiptRow): ReceiptFacts {
  return {
    receivedAt: receipt.receivedAt,
    callingAeTitle: receipt.callingAeTitle,
    callingHost: receipt.callingHost,
    patient: receipt.patient,
    studyUids: receipt.studyUids,
  };
}

/** Stores the receipt and what it brought to each study, then recounts those studies. */
async function recordReceipt(
  manager: EntityManager,
  received: StudyReceived,
  patient: string,
): Promise<void> {
  const receivedAt = new Date(received.receivedAt);
  await manager.getRepository(ReceiptEntity).upsert(
    {
      receiptId: received.receiptId,
      receivedAt,
      callingAeTitle: received.callingAeTitle,
      callingHost: received.callingHost,
      instanceCount: received.instanceCount,
      patient,
      studyUids: [...new Set(received.studies.map((s) => s.studyInstanceUid))].join(','),
    },
    ['receiptId'],
  );
  const byStudy = new Map<string, StudyReceiptRow>();
  for (const study of received.studies) {
    // A receipt may list a study twice (in theory): its series add up.
    const row = byStudy.get(study.studyInstanceUid) ?? {
      studyInstanceUid: study.studyInstanceUid,
      receiptId: received.receiptId,
      receivedAt,
      instanceCount: 0,
      series: [],
    };
    for (const series of study.series) {
      row.series.push({ ...series });
      row.instanceCount += series.instanceCount;
    }
    byStudy.set(study.studyInstanceUid, row);
  }
  const studies = [...byStudy.keys()].sort();
  for (const uid of studies) await lock(manager, `study:${uid}`);
  for (const row of byStudy.values())
    await manager.getRepository(StudyReceiptEntity).upsert(row, ['studyInstanceUid', 'receiptId']);
  for (const uid of studies) await recountStudy(manager, uid);
}

/**
 * The study over all its receipts. The revision is the number of receipts that brought it instances, so a
 * study that receives more instances later gets a higher revision, and a repeated receipt does not; an
 * instance brought again counts once (see seriesCountsOf).
 */
async function recountStudy(manager: EntityManager, studyInstanceUid: string): Promise<void> {
  const receipts = await manager.getRepository(StudyReceiptEntity).find({ where: { studyInstanceUid } });
  const series = await seriesCountsOf(manager, studyInstanceUid, receipts);
  const instanceCount = series.reduce((n, s) => n + s.instanceCount, 0);
  let revision = 0;
  let first: Date | undefined;
  let last: Date | undefined;
  for (const receipt of receipts) {
    if (receipt.instanceCount > 0) revision++;
    if (!first || receipt.receivedAt < first) first = receipt.receivedAt;
    if (!last || receipt.receivedAt > last) last = receipt.receivedAt;
  }
  if (!first || !last) return;
  await manager.getRepository(StudyEntity).upsert(
    {
      studyInstanceUid,
      revision,
      seriesCount: series.length,
      instanceCount,
      firstReceived: first,
      lastReceived: last,
    },
    ['studyInstanceUid'],
  );
}

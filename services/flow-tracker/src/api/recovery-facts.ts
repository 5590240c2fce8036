import { In, type DataSource } from 'typeorm';
import {
  destinationText,
  type FlowFinished,
  type FlowMatched,
  type FlowRerun,
  type StudyReceived,
} from '@dicomflow/messages';
import { EventEntity, type EventRow, type RunRow } from '../db/entities.js';
import { Deliveries, deliveryStatus } from '../events/deliveries.js';
import type { TrackedEvent } from '../events/tracked-event.js';
import { statusName } from './schemas.js';

/** The receipt a rerun starts from: where it lives and who sent it. */
export type RerunReceipt = Pick<
  FlowRerun,
  'receiptId' | 'bucket' | 'tarKey' | 'indexKey' | 'tarSubdir' | 'callingAeTitle' | 'callingHost'
>;

/** What `GET /runs/:id` adds about recovery: the resends of the run and the reruns it has or is. */
export interface RecoveryView {
  /** The run this run is a rerun of, else null. */
  readonly rerunOf: string | null;
  /** Runs started as reruns of this one, oldest first. */
  readonly reruns: { runId: string; rerunId: string; requestedAt: string }[];
  /** Operators' resends of the run's output, oldest first, each with where it went and how it ended. */
  readonly resends: {
    id: string;
    requestedAt: string | null;
    destinations: string[];
    status: number;
    statusName: string;
    sent: string | null;
    failure: { reason: string; message: string } | null;
  }[];
  /** When the latest resend was asked for (retries before it belong to an earlier delivery), else null. */
  readonly latestResendAt: Date | null;
}

/** The run's own `flow.finished` (not a resend's): what a resend sends again. */
export async function ownFlowFinished(
  dataSource: DataSource,
  runId: string,
): Promise<FlowFinished | undefined> {
  const rows = await eventsOf(dataSource, runId, ['flow.finished']);
  return rows.map((row) => row.body as FlowFinished).find((body) => body.resend === undefined);
}

/**
 * The receipt of `run` as `study.received` named it; without that event, as the run's `flow.matched` or
 * `flow.rerun` repeated it (`tarSubdir` then only when the flow had none of its own).
 */
export async function rerunReceipt(dataSource: DataSource, run: RunRow): Promise<RerunReceipt | undefined> {
  if (run.receiptId === null) return undefined;
  const received = await dataSource
    .getRepository(EventEntity)
    .findOne({ where: { receiptId: run.receiptId, routingKey: 'study.received' } });
  if (received) return receiptOf(received.body as StudyReceived, (received.body as StudyReceived).tarSubdir);
  for (const row of await eventsOf(dataSource, run.id, ['flow.matched', 'flow.rerun'])) {
    if (row.routingKey === 'flow.rerun') {
      const body = row.body as FlowRerun;
      return receiptOf(body, body.tarSubdir);
    }
    const body = row.body as FlowMatched;
    return receiptOf(body, body.flow.tar_subdir.length > 0 ? [] : body.tarSubdir);
  }
  return undefined;
}

/** The recovery facts of `run`, from its events (and the reruns of its receipt). */
export async function recoveryView(dataSource: DataSource, run: RunRow): Promise<RecoveryView> {
  const rows = await eventsOf(dataSource, run.id, [
    'flow.finished',
    'flow.rerun',
    'send.started',
    'send.retrying',
    'send.finished',
    'send.failed',
  ]);
  const deliveries = new Deliveries();
  const destinations = new Map<string, string[]>();
  let rerunOf: string | null = null;
  for (const row of rows) {
    const event = { routingKey: row.routingKey, body: row.body } as TrackedEvent;
    deliveries.record(event);
    if (event.routingKey === 'flow.rerun') rerunOf = event.body.rerunOf;
    if (event.routingKey === 'flow.finished' && event.body.resend)
      destinations.set(event.body.resend.id, targetsText(event.body));
  }
  const resends = deliveries
    .all()
    .filter((delivery) => delivery.id !== '')
    .sort((a, b) => (a.requestedAt?.getTime() ?? 0) - (b.requestedAt?.getTime() ?? 0));
  return {
    rerunOf,
    reruns: await rerunsOf(dataSource, run),
    resends: resends.map((delivery) => {
      const status = deliveryStatus(delivery);
      return {
        id: delivery.id,
        requestedAt: delivery.requestedAt?.toISOString() ?? null,
        destinations: destinations.get(delivery.id) ?? [],
        status,
        statusName: statusName(status),
        sent: delivery.finishedAt?.toISOString() ?? null,
        failure: delivery.failure
          ? { reason: delivery.failure.reason, message: delivery.failure.message }
          : null,
      };
    }),
    latestResendAt: resends.at(-1)?.requestedAt ?? null,
  };
}

async function rerunsOf(dataSource: DataSource, run: RunRow): Promise<RecoveryView['reruns']> {
  if (run.receiptId === null) return [];
  const rows = await dataSource
    .getRepository(EventEntity)
    .find({ where: { receiptId: run.receiptId, routingKey: 'flow.rerun' } });
  return rows
    .map((row) => row.body as FlowRerun)
    .filter((body) => body.rerunOf === run.id)
    .sort((a, b) => (a.requestedAt < b.requestedAt ? -1 : a.requestedAt > b.requestedAt ? 1 : 0))
    .map((body) => ({ runId: body.runId, rerunId: body.rerunId, requestedAt: body.requestedAt }));
}

/** Every node a `flow.finished` sends to, as `AE@host:port` (a DICOMweb server: its URL). */
export function targetsText(finished: Pick<FlowFinished, 'destinations' | 'returnToSender'>): string[] {
  const back = finished.returnToSender;
  return [
    ...finished.destinations.map(destinationText),
    ...back.ports.map((port) => `${back.aeTitle}@${back.host}:${port}`),
  ];
}

function eventsOf(dataSource: DataSource, runId: string, keys: readonly string[]): Promise<EventRow[]> {
  return dataSource
    .getRepository(EventEntity)
    .find({ where: { runId, routingKey: In([...keys]) }, order: { eventKey: 'ASC' } });
}

function receiptOf(source: Omit<RerunReceipt, 'tarSubdir'>, tarSubdir: readonly string[]): RerunReceipt {
  return {
    receiptId: source.receiptId,
    bucket: source.bucket,
    tarKey: source.tarKey,
    indexKey: source.indexKey,
    tarSubdir: [...tarSubdir],
    callingAeTitle: source.callingAeTitle,
    callingHost: source.callingHost,
  };
}

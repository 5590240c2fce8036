import { createHash } from 'node:crypto';
import type { Broker, Subscription, SuiteQueue } from '@dicomflow/broker';
import {
  MESSAGE_SCHEMAS,
  isSchemaRoutingKey,
  type SchemaRoutingKey,
  type SendFinished,
} from '@dicomflow/messages';
import { PermanentError, type Logger } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';
import { RunEntity } from '../db/entities.js';
import type { EventStore } from '../events/event-store.js';
import { recordDeliveredInstances } from '../instances/delivered-instances.js';
import { recordReceivedInstances } from '../instances/received-instances.js';
import type { TrackedEvent } from '../events/tracked-event.js';
import type { TrackerMetrics } from '../metrics.js';
import type { PatientColumnMode } from '../patient/patient-column.js';
import { readPatientColumn } from '../patient/read-patient.js';
import { readStepLog } from '../steps/read-step-log.js';

/** Every routing key with a schema: the tracker records them all. */
export const TRACKED_ROUTING_KEYS = Object.keys(MESSAGE_SCHEMAS) as SchemaRoutingKey[];

/** Unacked events held at once: rows of different runs are built in parallel, one run at a time. */
export const TRACKER_PREFETCH = 8;

/** What the event handler needs. */
export interface TrackerDeps {
  readonly store: EventStore;
  readonly storage: Pick<Storage, 'getStream' | 'getBuffer'>;
  readonly patient: { readonly mode: PatientColumnMode; readonly pseudonymKey: string };
  readonly metrics: TrackerMetrics;
  readonly logger: Logger;
}

/**
 * Consumes the tracker's queue (bound to `#`). The broker validates each message against the schema of its
 * routing key; bindings name every key so that it does, and the `#` binding of the suite queue adds
 * nothing else a schema knows.
 */
export async function consumeTrackerEvents(
  broker: Broker,
  queue: SuiteQueue,
  deps: TrackerDeps,
): Promise<Subscription> {
  return broker.consume(
    { queue: queue.name, bindings: TRACKED_ROUTING_KEYS, prefetch: TRACKER_PREFETCH },
    async (body, ctx) => {
      if (!isSchemaRoutingKey(ctx.routingKey))
        throw new PermanentError(`unknown routing key ${ctx.routingKey}`);
      // The broker validated `body` against the schema of exactly this routing key.
      const event = { routingKey: ctx.routingKey, body } as TrackedEvent;
      await execTrackEvent(event, eventKeyOf(event, ctx.messageId), { ...deps, logger: ctx.logger });
    },
  );
}

/**
 * Records one event (what the consumer does per message; tests call it directly). Idempotent: an event
 * key seen before changes nothing.
 */
export async function execTrackEvent(
  event: TrackedEvent,
  eventKey: string,
  deps: TrackerDeps,
): Promise<void> {
  const patient =
    event.routingKey === 'study.received'
      ? await readPatientColumn(deps.storage, event.body, { ...deps.patient, logger: deps.logger })
      : '';
  const result = await deps.store.record(eventKey, await withStepLog(event, deps), patient);
  // After the event (its receipt or run row exists then); repeated on a redelivery, inserting nothing twice.
  if (event.routingKey === 'study.received') {
    await recordReceivedInstances(deps.store.dataSource, deps.storage, event.body, deps.logger);
    await deps.store.recountStudiesOf(event.body.receiptId);
  } else if (event.routingKey === 'send.finished') {
    await recordDeliveredInstances(deps.store.dataSource, deps.storage, event.body, deps.logger);
    if (result === 'recorded') await observeResultTime(deps, event.body);
  }
  deps.metrics.events.inc({ routing_key: event.routingKey, result });
  deps.logger.debug({ result }, 'event tracked');
}

/**
 * Time from the run's receipt (its last instance received) to its result delivered, by flow, once per run's
 * own delivery (an operator's resend says nothing about how fast the suite is).
 */
async function observeResultTime(deps: TrackerDeps, finished: SendFinished): Promise<void> {
  if (finished.resend !== undefined) return;
  const run = await deps.store.dataSource.getRepository(RunEntity).findOne({ where: { id: finished.runId } });
  if (!run?.received) return;
  const seconds = (new Date(finished.finishedAt).getTime() - run.received.getTime()) / 1000;
  if (Number.isFinite(seconds) && seconds >= 0)
    deps.metrics.resultSeconds.observe({ flow: run.name || run.flowFile }, seconds);
}

/** A finished or failed step's event with the log its message points to, read in (kept in the database). */
async function withStepLog(event: TrackedEvent, deps: TrackerDeps): Promise<TrackedEvent> {
  if (event.routingKey !== 'job.finished' && event.routingKey !== 'job.failed') return event;
  if (event.body.log === undefined) return event;
  const logExcerpt = await readStepLog(deps.storage, event.body, deps.logger);
  return {
    ...event,
    body: { ...event.body, ...(logExcerpt === undefined ? {} : { logExcerpt }) },
  } as TrackedEvent;
}

/**
 * The key an event is deduplicated by: its routing key and message id (deterministic for every run event),
 * or a hash of its body when a publisher sent no id.
 */
export function eventKeyOf(event: TrackedEvent, messageId: string): string {
  const id =
    messageId !== '' ? messageId : createHash('sha256').update(JSON.stringify(event.body)).digest('hex');
  return `${event.routingKey}|${id}`;
}

import type { MessageOf, SchemaRoutingKey } from '@dicomflow/messages';

/** An event as the tracker keeps it: its routing key and body, typed together. */
export type TrackedEvent = {
  [K in SchemaRoutingKey]: { readonly routingKey: K; readonly body: MessageOf<K> };
}[SchemaRoutingKey];

/** Every routing key the tracker consumes (all of them: its queue is bound to `#`). */
export type RunEventKey = Exclude<SchemaRoutingKey, 'study.received'>;

/** The run an event belongs to; none for `study.received`. */
export function runIdOf(event: TrackedEvent): string | undefined {
  return event.routingKey === 'study.received' ? undefined : event.body.runId;
}

/** The receipt an event names, when it names one (job.started/finished/failed do not). */
export function receiptIdOf(event: TrackedEvent): string | undefined {
  const body: object = event.body;
  return 'receiptId' in body && typeof body.receiptId === 'string' ? body.receiptId : undefined;
}

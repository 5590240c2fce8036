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

/**
 * The body as the tracker stores it: without the lists of tar members (up to 100 000 names per run, which
 * no row shows). Stored bodies are therefore not re-validated against the message schemas.
 */
export function storedBody(event: TrackedEvent): unknown {
  if (event.routingKey === 'flow.matched') return { ...event.body, members: [] };
  if (
    (event.routingKey === 'job.cpu' || event.routingKey === 'job.gpu') &&
    event.body.input.kind === 'receipt'
  )
    return { ...event.body, input: { ...event.body.input, members: [] } };
  return event.body;
}

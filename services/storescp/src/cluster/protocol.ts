import type { ConfigOf } from '@dicomflow/config';
import type { InstanceInfo } from '@dicomflow/dicom';
import { extractTraceContext, injectTraceHeaders } from '@dicomflow/runtime';
import { TooManyOpenGroupsError, type InstanceOrigin } from '../spool/grouper.js';
import { IndexLineTooLargeError } from '../spool/spool.js';

/*
 * The messages between the service process (the primary: spool index, grouper, publishing) and its
 * receiver workers (DICOM associations), over the cluster IPC channel (JSON). Each carries `channel`, so
 * that messages of other users of the channel (prom-client, the test runner) are told apart.
 */

export const CHANNEL = 'dicomflow.storescp.receiver';

/** Which DICOM ports every worker listens on: the primary picks them, so all workers share one. */
export interface WorkerPorts {
  readonly dicom: number;
  readonly dicomTls?: number | undefined;
}

/** An error of {@link Grouper.admit} as it crosses the channel: the typed ones keep their type. */
export type WireError =
  | { readonly kind: 'too-many-open-groups'; readonly limit: number }
  | { readonly kind: 'index-line-too-large'; readonly bytes: number }
  | { readonly kind: 'other'; readonly message: string };

/** An {@link InstanceOrigin} as it crosses the channel: the trace context as W3C trace headers. */
export interface WireOrigin extends Omit<InstanceOrigin, 'trace'> {
  readonly traceHeaders?: Record<string, string> | undefined;
}

/** Primary to worker. */
export type ToWorker = { readonly channel: typeof CHANNEL } & (
  | {
      readonly kind: 'init';
      readonly slot: number;
      readonly config: ConfigOf<'storescp'>;
      readonly ports: WorkerPorts;
    }
  /** The answer to request `id`; no error: done. */
  | { readonly kind: 'answer'; readonly id: number; readonly error?: WireError | undefined }
  /** Associations open in the other workers now (MAX_ASSOCIATIONS counts them all). */
  | { readonly kind: 'elsewhere'; readonly open: number }
  | { readonly kind: 'metrics'; readonly id: number }
  /** Stop taking associations, drain the open ones for up to `drainMs`, then exit. */
  | { readonly kind: 'close'; readonly drainMs: number }
);

/** Worker to primary. */
export type FromWorker = { readonly channel: typeof CHANNEL } &
  /** Listening for messages: the primary may send `init`. */
  (
    | { readonly kind: 'started' }
    | { readonly kind: 'ready' }
    | { readonly kind: 'failed'; readonly message: string }
    | {
        readonly kind: 'admit';
        readonly id: number;
        readonly origin: WireOrigin;
        readonly info: InstanceInfo;
        readonly path: string;
      }
    | { readonly kind: 'end-association'; readonly id: number; readonly associationId: string }
    | { readonly kind: 'connections'; readonly open: number }
    /** The worker registry's `getMetricsAsJSON()`, for prom-client's aggregation. */
    | { readonly kind: 'metrics'; readonly id: number; readonly metrics: object[] }
  );

/** A message of ours (by its channel); anything else on the IPC channel is not. */
function ofChannel(message: unknown): boolean {
  return (
    typeof message === 'object' && message !== null && 'channel' in message && message.channel === CHANNEL
  );
}

/** Narrows a message the worker received. */
export function isToWorker(message: unknown): message is ToWorker {
  return ofChannel(message);
}

/** Narrows a message the primary received from a worker. */
export function isFromWorker(message: unknown): message is FromWorker {
  return ofChannel(message);
}

/** The wire form of an admission error. */
export function encodeError(err: unknown): WireError {
  if (err instanceof TooManyOpenGroupsError) return { kind: 'too-many-open-groups', limit: err.limit };
  if (err instanceof IndexLineTooLargeError) return { kind: 'index-line-too-large', bytes: err.bytes };
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

/** Raised in a worker for an admission that failed in the primary with an error of no particular type. */
export class PrimaryFilingError extends Error {
  override readonly name = 'PrimaryFilingError';
}

/** The error {@link encodeError} carried, with its type again, so the same DICOM status is answered. */
export function decodeError(wire: WireError): Error {
  switch (wire.kind) {
    case 'too-many-open-groups':
      return new TooManyOpenGroupsError(wire.limit);
    case 'index-line-too-large':
      return new IndexLineTooLargeError(wire.bytes);
    case 'other':
      return new PrimaryFilingError(wire.message);
  }
}

/** The wire form of an origin; its trace context goes as `traceparent` (when a span is recorded). */
export function encodeOrigin(origin: InstanceOrigin): WireOrigin {
  const { trace, ...rest } = origin;
  const traceHeaders: Record<string, string> = {};
  if (trace) injectTraceHeaders(traceHeaders, trace);
  return Object.keys(traceHeaders).length > 0 ? { ...rest, traceHeaders } : rest;
}

/** The origin {@link encodeOrigin} carried: its trace continues from the worker's association span. */
export function decodeOrigin(wire: WireOrigin): InstanceOrigin {
  const { traceHeaders, ...rest } = wire;
  return traceHeaders ? { ...rest, trace: extractTraceContext(traceHeaders) } : rest;
}

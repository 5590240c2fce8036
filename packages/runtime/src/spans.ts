import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';

export type { Span, Attributes as SpanAttributes } from '@opentelemetry/api';
/** Where a span goes in its trace: the span (or remote parent) it becomes a child of. */
export type TraceContext = Context;

/** The instrumentation scope of every span of the suite. */
const TRACER_NAME = 'dicomflow';

/** How a span is started. */
export interface SpanOptions {
  readonly attributes?: Attributes;
  /** Its parent; default: the active context (the span running now, if any). */
  readonly parent?: TraceContext | undefined;
  /** When it began, if before now (epoch ms or a Date): a phase measured after the fact. */
  readonly startTime?: number | Date | undefined;
  readonly kind?: 'internal' | 'producer' | 'consumer' | 'server' | 'client';
  /** Other traces it belongs to as well (e.g. the associations of a study-grouped receipt). */
  readonly links?: readonly TraceContext[];
  /** Starts a trace of its own, whatever is active (e.g. an association, which nothing caused here). */
  readonly root?: boolean;
}

const KINDS = {
  internal: SpanKind.INTERNAL,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
} as const;

/**
 * Starts a span that is not made active (end it yourself). Without tracing (see startTracing) it is the
 * API's non-recording span, which costs next to nothing.
 */
export function startSpan(name: string, opts: SpanOptions = {}): Span {
  const links: Link[] = [];
  for (const linked of opts.links ?? []) {
    const spanContext = trace.getSpanContext(linked);
    if (spanContext && trace.isSpanContextValid(spanContext)) links.push({ context: spanContext });
  }
  return trace.getTracer(TRACER_NAME).startSpan(
    name,
    {
      kind: KINDS[opts.kind ?? 'internal'],
      ...(opts.root ? { root: true } : {}),
      ...(opts.attributes ? { attributes: opts.attributes } : {}),
      ...(opts.startTime === undefined ? {} : { startTime: opts.startTime }),
      ...(links.length > 0 ? { links } : {}),
    },
    opts.parent ?? context.active(),
  );
}

/**
 * Runs `work` in a new span made active for it (logs and publishes inside belong to it), ending it when
 * `work` settles; a rejection is recorded on the span as an error and rethrown.
 */
export async function inSpan<T>(
  name: string,
  opts: SpanOptions,
  work: (span: Span) => Promise<T> | T,
): Promise<T> {
  const span = startSpan(name, opts);
  try {
    return await context.with(trace.setSpan(opts.parent ?? context.active(), span), () => work(span));
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Marks `span` as failed by `err`. */
export function failSpan(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Marks `span` as failed without an exception (e.g. a delivery that ended with instances not sent). */
export function markSpanError(span: Span, message: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** Records a phase that is over (it ran from `start` to `end`, epoch ms) as a child of `parent`. */
export function recordSpan(
  name: string,
  start: number,
  end: number,
  opts: Omit<SpanOptions, 'startTime'> = {},
): void {
  startSpan(name, { ...opts, startTime: start }).end(Math.max(start, end));
}

/** The active context: a parent to hand to work that runs later, outside the current call chain. */
export function activeTraceContext(): TraceContext {
  return context.active();
}

/** The context in which `span` is the parent of new spans. */
export function traceContextOf(span: Span, parent: TraceContext = context.active()): TraceContext {
  return trace.setSpan(parent, span);
}

/** Runs `work` with `ctx` active. */
export function withTraceContext<T>(ctx: TraceContext, work: () => T): T {
  return context.with(ctx, work);
}

/**
 * Writes the W3C trace context of `ctx` (default: the active one) into message or request headers:
 * `traceparent` (and `tracestate`) when a span is being recorded, nothing otherwise.
 */
export function injectTraceHeaders(
  headers: Record<string, unknown>,
  ctx: TraceContext = context.active(),
): void {
  propagation.inject(ctx, headers, {
    set: (carrier, key, value) => {
      carrier[key] = value;
    },
  });
}

/**
 * The remote parent a message's or request's `traceparent` header names (the root context when it has
 * none, or a malformed one). Header values that are Buffers (AMQP long strings) are read as UTF-8.
 */
export function extractTraceContext(headers: Record<string, unknown> | undefined): TraceContext {
  if (!headers) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers, {
    keys: (carrier) => Object.keys(carrier),
    get: (carrier, key) => {
      const value = carrier[key];
      if (typeof value === 'string') return value;
      if (Buffer.isBuffer(value)) return value.toString('utf8');
      if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
      return undefined;
    },
  });
}

/** Trace and span id of the active span, for log lines; undefined when no span is recorded. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return undefined;
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { activeTraceIds, inSpan, startTracing, TransientError, type Tracing } from '@dicomflow/runtime';
import { connectBroker, type Broker } from './index.js';
import { captureLogs, RABBIT, RabbitTestKit, studyReceived, waitFor } from './testing/rabbit-test-kit.js';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

interface Seen {
  attempt: number;
  traceparent: unknown;
  ids: ReturnType<typeof activeTraceIds>;
}

describe('trace context over RabbitMQ', () => {
  let kit: RabbitTestKit;
  let broker: Broker;
  let tracing: Tracing;

  beforeEach(async () => {
    // Spans are recorded; where they would be exported does not matter here (nothing listens there).
    tracing = await startTracing('broker-test', undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
    kit = await RabbitTestKit.open();
    broker = await connectBroker({
      config: RABBIT,
      logger: captureLogs().logger,
      exchange: kit.exchange,
      deadExchange: kit.deadExchange,
    });
  });

  afterEach(async () => {
    await broker.close();
    await kit.cleanup();
    await tracing.close(500);
  });

  it('runs the handler in a span of the publisher’s trace, also on the retry of a failed attempt', async () => {
    const queue = kit.queue();
    const seen: Seen[] = [];
    const subscription = await broker.consume(
      { queue, bindings: ['study.received'], retryDelaysMs: [50] },
      (_body, ctx) => {
        seen.push({ attempt: ctx.attempt, traceparent: ctx.headers.traceparent, ids: activeTraceIds() });
        return ctx.attempt === 1 ? Promise.reject(new TransientError('once')) : Promise.resolve();
      },
    );
    const origin = await inSpan('origin', {}, async () => {
      await broker.publish('study.received', studyReceived());
      return activeTraceIds();
    });
    await waitFor(() => seen.length === 2, 'the attempt and its retry');
    await subscription.cancel();

    expect(origin?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    const [first, retry] = seen as [Seen, Seen];
    const [, traceId, publishSpan] = TRACEPARENT.exec(String(first.traceparent)) ?? [];
    expect(traceId).toBe(origin?.trace_id);
    // The header names the publish span (a child of `origin`), and the handler's span is a new one.
    expect(publishSpan).not.toBe(origin?.span_id);
    expect(first.ids?.trace_id).toBe(origin?.trace_id);
    expect([origin?.span_id, publishSpan]).not.toContain(first.ids?.span_id);
    // The retry copy keeps the header: the second attempt is in the same trace, under the same publish.
    expect(retry).toMatchObject({ attempt: 2, traceparent: first.traceparent });
    expect(retry.ids?.trace_id).toBe(origin?.trace_id);
    expect(retry.ids?.span_id).not.toBe(first.ids?.span_id);
  });

  it('starts a trace of its own for a message published outside any span', async () => {
    const queue = kit.queue();
    const seen: Seen[] = [];
    const subscription = await broker.consume({ queue, bindings: ['study.received'] }, (_body, ctx) => {
      seen.push({ attempt: ctx.attempt, traceparent: ctx.headers.traceparent, ids: activeTraceIds() });
      return Promise.resolve();
    });
    await broker.publish('study.received', studyReceived());
    await waitFor(() => seen.length === 1, 'the handler');
    await subscription.cancel();
    // The publish span itself is the root: the header is there, and the handler continues its trace.
    const [, traceId] = TRACEPARENT.exec(String(seen[0]?.traceparent)) ?? [];
    expect(seen[0]?.ids?.trace_id).toBe(traceId);
  });
});

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { activeTraceIds, extractTraceContext, injectTraceHeaders, inSpan, recordSpan } from './spans.js';
import { startTracing, tracesUrl, tracingWanted, type Tracing } from './tracing.js';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

/** A logger whose lines are collected, parsed. */
function collectingLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ service: 'unit', destination }), lines };
}

interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
}

/** An OTLP/HTTP endpoint that keeps the spans posted to /v1/traces (JSON). */
async function startReceiver(): Promise<{ url: string; spans: ExportedSpan[]; close: () => Promise<void> }> {
  const spans: ExportedSpan[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      type Body = {
        resourceSpans: Array<{
          resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
          scopeSpans: Array<{ spans: Omit<ExportedSpan, 'service'>[] }>;
        }>;
      };
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body;
      for (const { resource, scopeSpans } of body.resourceSpans) {
        const service = resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const scope of scopeSpans) for (const span of scope.spans) spans.push({ ...span, service });
      }
      response.writeHead(request.url === '/v1/traces' ? 200 : 404).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let tracing: Tracing | undefined;
afterEach(async () => {
  await tracing?.close();
  tracing = undefined;
});

describe('tracingWanted and tracesUrl', () => {
  it('turns the exporter on only with an OTLP endpoint, and not when the SDK is disabled', () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBe(
      false,
    );
  });

  it('posts to the traces endpoint as given, else to /v1/traces of the general one', () => {
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' })).toBe('http://c:4318/v1/traces');
    expect(
      tracesUrl({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t/x',
      }),
    ).toBe('http://t/x');
  });
});

describe('startTracing', () => {
  it('without an endpoint registers nothing: spans run their work, no traceparent, no trace id in logs', async () => {
    tracing = await startTracing('unit', undefined, {});
    expect(tracing.enabled).toBe(false);
    const { logger, lines } = collectingLogger();
    const headers: Record<string, unknown> = {};
    const result = await inSpan('work', {}, () => {
      injectTraceHeaders(headers);
      logger.info('inside');
      return 42;
    });
    expect(result).toBe(42);
    expect(headers).toEqual({});
    expect(activeTraceIds()).toBeUndefined();
    expect(lines[0]).not.toHaveProperty('trace_id');
  });

  it('exports spans with service.name, continues a trace from a traceparent and puts trace ids in logs', async () => {
    const receiver = await startReceiver();
    try {
      tracing = await startTracing('unit-service', undefined, {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_BSP_SCHEDULE_DELAY: '100000',
      });
      expect(tracing.enabled).toBe(true);
      const { logger, lines } = collectingLogger();
      const headers: Record<string, unknown> = {};
      await inSpan('publisher', {}, () => {
        injectTraceHeaders(headers);
      });
      const [, traceId, publisherId] = TRACEPARENT.exec(String(headers.traceparent)) ?? [];
      expect(traceId).toBeDefined();
      // What a consumer in another process does with the message's headers.
      await inSpan('consumer', { parent: extractTraceContext(headers), kind: 'consumer' }, () => {
        recordSpan('phase', Date.now() - 50, Date.now());
        logger.info('handling');
      });
      await expect(inSpan('failing', {}, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      logger.info('outside');
      expect(lines[0]).toMatchObject({ msg: 'handling', trace_id: traceId });
      expect(lines[0]?.span_id).toMatch(/^[0-9a-f]{16}$/);
      expect(lines[1]).not.toHaveProperty('trace_id');

      // The batch would wait 100 s: close() must send what is buffered.
      await tracing.close();
      const byName = new Map(receiver.spans.map((s) => [s.name, s]));
      expect([...byName.keys()].sort()).toEqual(['consumer', 'failing', 'phase', 'publisher']);
      expect(receiver.spans.every((s) => s.service === 'unit-service')).toBe(true);
      expect(byName.get('publisher')?.spanId).toBe(publisherId);
      expect(byName.get('consumer')).toMatchObject({ traceId, parentSpanId: publisherId });
      expect(byName.get('phase')?.parentSpanId).toBe(byName.get('consumer')?.spanId);
      expect(byName.get('failing')?.traceId).not.toBe(traceId);
    } finally {
      await receiver.close();
    }
  });

  it('ignores a malformed traceparent: the consumer starts a trace of its own', () => {
    expect(activeTraceIds()).toBeUndefined();
    const ctx = extractTraceContext({ traceparent: 'not-a-traceparent', other: Buffer.from('x') });
    const headers: Record<string, unknown> = {};
    injectTraceHeaders(headers, ctx);
    expect(headers).toEqual({});
  });
});

// OpenTelemetry traces end to end: the suite exports to an OTLP/HTTP receiver of the test, dcmtk storescu
// sends a study, a flow chains two models and sends to a dcmtk destination, and the spans received must
// make one trace from the association to the last send, each service's consume span a child of the span
// that published its message in the service before.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  buildTestModelImage,
  COPY_MODEL,
  generateCtSeries,
  nodelayShimPath,
  storescu,
  waitFor,
} from '@dicomflow/test-helpers';
import { startDestination, type DcmtkDestination } from './support/destination.js';
import { AE_TITLE, isDone, startE2eStack, type E2eStack, E2E_TEST_TIMEOUT_MS } from './support/e2e-stack.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

let receiver: OtlpReceiver;
let stack: E2eStack;
let work: string;
let shim: string;
let destination: DcmtkDestination;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-traces-'));
  shim = await nodelayShimPath(work);
  destination = await startDestination(work, shim);
  receiver = await startOtlpReceiver();
  stack = await startE2eStack({
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: '200' },
  });
}, 240_000);

afterAll(async () => {
  await stack.close();
  await destination.process.stop();
  await receiver.close();
  await rm(work, { recursive: true, force: true });
});

/** The one span named `name` (of `service`, when given) whose parent is `parent`; fails the test otherwise. */
function childOf(
  spans: readonly ReceivedSpan[],
  parent: ReceivedSpan,
  name: string,
  service = parent.service,
): ReceivedSpan {
  const found = spans.filter(
    (s) => s.parentSpanId === parent.spanId && s.name === name && s.service === service,
  );
  const seen = spans
    .filter((s) => s.parentSpanId === parent.spanId)
    .map((s) => `${s.service}/${s.name}`)
    .join(', ');
  expect(found, `${service}/${name} under ${parent.service}/${parent.name} (children: ${seen})`).toHaveLength(
    1,
  );
  return found[0] as ReceivedSpan;
}

describe('traces', () => {
  it('follow one receipt through every service in one trace, each hop a child of the one before', async () => {
    const copyImage = await buildTestModelImage(COPY_MODEL);
    const renameImage = await buildTestModelImage({
      name: 'suffix-model',
      script:
        'set -e\ncd /input\nfind . -type f | while read -r f; do mkdir -p "/output/$(dirname "$f")"; cp "$f" "/output/$f.step0"; done\n',
    });
    await stack.writeFlow('traced.yaml', {
      name: 'traced',
      triggers: [{ PatientID: '^E2E-TRACE$' }],
      models: [{ docker_kwargs: { image: renameImage } }, { docker_kwargs: { image: copyImage } }],
      destinations: [{ host: '127.0.0.1', port: destination.port, ae_title: 'DEST' }],
    });
    const files = await generateCtSeries(join(work, 'study'), 3, {
      patientId: 'E2E-TRACE',
      rows: 64,
      columns: 64,
    });
    const sent = await storescu({
      port: stack.aePort,
      calledAe: AE_TITLE,
      callingAe: 'E2E-SCU',
      files,
      env: { ...process.env, LD_PRELOAD: shim },
    });
    expect(sent.code, sent.stderr).toBe(0);
    const [run] = await stack.waitForRuns('traced', 1, isDone);
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    const runId = run?.id ?? '';

    // The sender's consume span ends after its sends: once it is in, the trace is whole (bar the tracker).
    let trace: ReceivedSpan[] = [];
    await waitFor(
      () => {
        const send = receiver
          .spans()
          .find((s) => s.name === 'send' && s.attributes['dicomflow.run_id'] === runId);
        trace = send ? receiver.spans().filter((s) => s.traceId === send.traceId) : [];
        return (
          trace.some((s) => s.service === 'sender' && s.name === 'process flow.finished') &&
          trace.some((s) => s.service === 'flow-tracker' && s.name === 'process send.finished')
        );
      },
      'the spans of the run',
      60_000,
    );
    expect(receiver.problems).toEqual([]);
    const traceId = trace[0]?.traceId ?? '';

    // Everything about this run, whichever service made it, is in this one trace.
    const ofRun = receiver
      .spans()
      .filter(
        (s) =>
          s.attributes['dicomflow.run_id'] === runId ||
          s.attributes['messaging.message.conversation_id'] === runId,
      );
    expect(ofRun.length).toBeGreaterThan(10);
    expect(new Set(ofRun.map((s) => s.traceId))).toEqual(new Set([traceId]));
    expect(new Set(trace.map((s) => s.service))).toEqual(
      new Set(['storescp', 'fingerprinter', 'scheduler', 'consumer', 'sender', 'flow-tracker']),
    );
    expect(trace.filter((s) => s.statusCode === 2).map((s) => `${s.service}/${s.name}`)).toEqual([]);

    // storescp: the association starts the trace; the receipt, its spool read and upload, its publish.
    const roots = trace.filter((s) => s.parentSpanId === '');
    expect(roots.map((s) => `${s.service}/${s.name}`)).toEqual(['storescp/association']);
    const association = roots[0] as ReceivedSpan;
    expect(association.attributes['dicom.calling_ae_title']).toBe('E2E-SCU');
    const receipt = childOf(trace, association, 'receipt');
    childOf(trace, receipt, 'spool');
    const upload = childOf(trace, receipt, 'receipt upload');
    const published = childOf(trace, receipt, 'publish study.received');
    expect(published.start).toBeGreaterThanOrEqual(upload.end);

    // fingerprinter: consumes study.received under storescp's publish, matches, publishes flow.matched.
    const matching = childOf(trace, published, 'process study.received', 'fingerprinter');
    childOf(trace, matching, 'match');
    const matched = childOf(trace, matching, 'publish flow.matched');

    // scheduler -> consumer, once per model; each job with its phases.
    let decidedBy = childOf(trace, matched, 'process flow.matched', 'scheduler');
    const consumes: ReceivedSpan[] = [matching, decidedBy];
    for (const step of [0, 1]) {
      const schedule = childOf(trace, decidedBy, 'schedule');
      const dispatched = childOf(trace, schedule, 'publish job.cpu');
      const taken = childOf(trace, dispatched, 'process job.cpu', 'consumer');
      const job = childOf(trace, taken, 'job');
      expect(job.attributes['dicomflow.step']).toBe(step);
      const wait = childOf(trace, job, 'queue wait');
      const staging = childOf(trace, job, 'input staging');
      const container = childOf(trace, job, 'container');
      const upload = childOf(trace, job, 'output upload');
      expect(wait.start).toBeGreaterThanOrEqual(schedule.start);
      expect(wait.end).toBeLessThanOrEqual(staging.start);
      expect(staging.end).toBeLessThanOrEqual(container.start);
      expect(container.end).toBeLessThanOrEqual(upload.start);
      const finished = childOf(trace, job, 'publish job.finished');
      expect(finished.start).toBeGreaterThanOrEqual(upload.end);
      decidedBy = childOf(trace, finished, 'process job.finished', 'scheduler');
      consumes.push(taken, decidedBy);
    }

    // sender: consumes flow.finished under the scheduler's publish and sends to the destination.
    const flowFinished = childOf(trace, childOf(trace, decidedBy, 'schedule'), 'publish flow.finished');
    const sending = childOf(trace, flowFinished, 'process flow.finished', 'sender');
    const send = childOf(trace, sending, 'send');
    expect(send.attributes['dicomflow.target']).toBe(`DEST@127.0.0.1:${destination.port}`);
    expect(send.attributes['dicomflow.sent']).toBe(3);

    // Along the data path every hop starts after the one before it.
    const path = [association, receipt, published, ...consumes, flowFinished, sending, send];
    for (let i = 1; i < path.length; i++) {
      const [before, after] = [path[i - 1] as ReceivedSpan, path[i] as ReceivedSpan];
      expect(
        after.start,
        `${after.service}/${after.name} after ${before.service}/${before.name}`,
      ).toBeGreaterThanOrEqual(before.start);
    }

    // The flow-tracker's consume spans continue the trace too, under the publishers' spans.
    const tracked = trace.filter((s) => s.service === 'flow-tracker' && s.name.startsWith('process '));
    expect(tracked.length).toBeGreaterThan(0);
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    for (const span of tracked) expect(byId.get(span.parentSpanId)?.name).toMatch(/^publish /);

    // Log lines written while handling the run name its trace.
    const logged = stack
      .logs()
      .split('\n')
      .filter((line) => line.includes(`"trace_id":"${traceId}"`));
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.some((line) => line.startsWith('[fingerprinter]') && line.includes('"span_id":"'))).toBe(
      true,
    );
  });
});

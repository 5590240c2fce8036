import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { suiteQueues, type Subscription } from '@dicomflow/broker';
import type { FlowFinished, FlowRerun } from '@dicomflow/messages';
import { createStorage } from '@dicomflow/storage';
import { removeBucketAndObjects, testStorageConfig, uniqueBucketName } from '@dicomflow/storage/testing';
import { waitFor } from '@dicomflow/test-helpers';
import { resendStory } from './testing/recovery-story.js';
import { runStory, type RunStory } from './testing/run-story.js';
import {
  eventsHandled,
  newIsolation,
  startTracker,
  testPool,
  TestPublisher,
  type InProcessTracker,
} from './testing/tracker-harness.js';

/** A request the tracker published, as its consumer (the sender, the fingerprinter) gets it. */
interface Published<T> {
  readonly messageId: string;
  readonly correlationId: string;
  readonly body: T;
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

describe('flow-tracker resend and rerun (RabbitMQ, PostgreSQL, S3)', () => {
  const storage = createStorage(testStorageConfig());
  const bucket = uniqueBucketName('tracker-recover');
  const resends: Published<FlowFinished>[] = [];
  const reruns: Published<FlowRerun>[] = [];
  const subscriptions: Subscription[] = [];
  let pool: pg.Pool;
  let tracker: InProcessTracker;
  let publisher: TestPublisher;
  let sent: RunStory, sendFailed: RunStory, modelFailed: RunStory, sending: RunStory, outputGone: RunStory;
  let published = 0;

  const post = async (path: string, body?: unknown): Promise<Answer> => {
    const response = await tracker.api(path, {
      method: 'POST',
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const get = async (path: string): Promise<Record<string, unknown>> =>
    (await (await tracker.api(path)).json()) as Record<string, unknown>;
  /** Publishes events and waits until the tracker handled them (and everything published before). */
  const publish = async (stories: readonly { events: RunStory['events'] }[]): Promise<void> => {
    const events = stories.flatMap((s) => s.events);
    await publisher.publish(events);
    published += events.length;
    await waitFor(async () => (await eventsHandled(tracker.baseUrl)) >= published, 'events handled');
  };

  beforeAll(async () => {
    pool = testPool();
    const isolation = newIsolation();
    publisher = await TestPublisher.open(isolation);
    tracker = await startTracker(isolation);
    await storage.ensureBucket(bucket);
    const where = { bucket, outputBucket: bucket };
    sent = runStory(where);
    sendFailed = runStory({ ...where, sendFails: true });
    modelFailed = runStory({ ...where, failAtStep: 0 });
    sending = runStory({ ...where, noSendOutcome: true });
    outputGone = runStory({ ...where, sendFails: true });
    // Stored outputs and receipt indexes, except outputGone's output and sendFailed's index.
    for (const story of [sent, sendFailed])
      await storage.putBuffer(bucket, `${story.runId}/1/output.tar`, 'tar');
    for (const story of [sent, modelFailed, outputGone])
      await storage.putBuffer(bucket, `${story.receiptId}.index.jsonl`, '{}\n');
    const queues = suiteQueues(isolation.queuePrefix);
    subscriptions.push(
      await publisher.broker.consume(
        { queue: queues.sender.name, bindings: ['flow.finished'] },
        (body, ctx) => {
          if (body.resend)
            resends.push({ messageId: ctx.messageId, correlationId: ctx.correlationId ?? '', body });
          return Promise.resolve();
        },
      ),
      await publisher.broker.consume(
        { queue: queues.fingerprinterRerun.name, bindings: ['flow.rerun'] },
        (body, ctx) => {
          reruns.push({ messageId: ctx.messageId, correlationId: ctx.correlationId ?? '', body });
          return Promise.resolve();
        },
      ),
    );
    await publish([sent, sendFailed, modelFailed, sending, outputGone]);
  });

  afterAll(async () => {
    for (const subscription of subscriptions) await subscription.cancel();
    await tracker.close();
    await publisher.cleanup(pool);
    await pool.end();
    await removeBucketAndObjects(storage, bucket);
  });

  it('resends a run whose delivery failed: the run again, with a resend, and it shows 4 once sent', async () => {
    const answer = await post(`/runs/${sendFailed.runId}/resend`);
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    expect(answer.body).toMatchObject({ runId: sendFailed.runId, destinations: ['PACS@pacs.example:104'] });
    const resendId = answer.body.resendId as string;
    await waitFor(() => resends.some((r) => r.body.resend?.id === resendId), 'the resend published');
    const request = resends.find((r) => r.body.resend?.id === resendId);
    expect(request?.messageId).toBe(`${sendFailed.runId}:resend:${resendId}`);
    expect(request?.correlationId).toBe(sendFailed.runId);
    const original = sendFailed.events.find((e) => e.event.routingKey === 'flow.finished')?.event.body;
    expect(request?.body).toEqual({
      ...original,
      resend: { id: resendId, requestedAt: answer.body.requestedAt },
    });

    // The tracker records its own request: the run waits for the sender again.
    await waitFor(async () => (await get(`/runs/${sendFailed.runId}`)).status === 2, 'the run at 2');
    published += 1;
    const resend = { id: resendId, requestedAt: answer.body.requestedAt as string };
    await publish([resendStory(sendFailed, { resend, noRequest: true })]);
    const run = await get(`/runs/${sendFailed.runId}`);
    expect(run).toMatchObject({ status: 4, statusName: 'sent', failure: null, waitingFor: null });
    expect(run.resends).toEqual([
      {
        id: resendId,
        requestedAt: resend.requestedAt,
        destinations: ['PACS@pacs.example:104'],
        status: 4,
        statusName: 'sent',
        sent: expect.any(String) as unknown,
        failure: null,
      },
    ]);
    // Only this resend's retries would show: the failed delivery's are older than the request.
    expect(run.sendRetries).toEqual([]);
  });

  it('resends a sent run to the destinations given instead of its own', async () => {
    const destinations = [{ host: '10.1.2.3', port: 11112, ae_title: 'RESEARCH' }];
    const answer = await post(`/runs/${sent.runId}/resend`, { destinations });
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    expect(answer.body.destinations).toEqual(['RESEARCH@10.1.2.3:11112']);
    published += 1; // the tracker's own request comes back to it
    await waitFor(
      () => resends.some((r) => r.body.resend?.id === answer.body.resendId),
      'the resend published',
    );
    const request = resends.find((r) => r.body.resend?.id === answer.body.resendId);
    expect(request?.body.destinations).toEqual(destinations);
    expect(request?.body.returnToSender.ports).toEqual([]);
    expect(request?.body.output).toEqual({ bucket, key: `${sent.runId}/1/output.tar` });
  });

  it('resends a sent run to a DICOMweb server given by URL', async () => {
    const destinations = [{ url: 'https://research.example/dicom-web', token_file: 'research-token' }];
    const answer = await post(`/runs/${sent.runId}/resend`, { destinations });
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    expect(answer.body.destinations).toEqual(['https://research.example/dicom-web']);
    published += 1; // the tracker's own request comes back to it
    await waitFor(
      () => resends.some((r) => r.body.resend?.id === answer.body.resendId),
      'the resend published',
    );
    const request = resends.find((r) => r.body.resend?.id === answer.body.resendId);
    expect(request?.body.destinations).toEqual(destinations);
    const badUrl = await post(`/runs/${sent.runId}/resend`, {
      destinations: [{ url: 'https://user:pw@research.example/dicom-web' }],
    });
    expect(badUrl.status).toBe(400);
    expect(badUrl.body.error).toMatch(/\/destinations\/0\/url/);
  });

  it('refuses what cannot be resent: unknown 404, in progress, no output or output gone 409, bad body 400', async () => {
    const unknown = await post('/runs/00000000-0000-4000-8000-000000000000/resend');
    expect(unknown).toEqual({ status: 404, body: { error: 'no run 00000000-0000-4000-8000-000000000000' } });
    const inProgress = await post(`/runs/${sending.runId}/resend`);
    expect(inProgress.status).toBe(409);
    expect(inProgress.body.error).toBe(
      `run ${sending.runId} is in progress (status 3, sending): resend it once it is sent (4) or failed (400)`,
    );
    const noOutput = await post(`/runs/${modelFailed.runId}/resend`);
    expect(noOutput.status).toBe(409);
    expect(noOutput.body.error).toMatch(
      /has no output to resend: it failed before its last model finished \(exit-code\)/,
    );
    const gone = await post(`/runs/${outputGone.runId}/resend`);
    expect(gone.status).toBe(409);
    expect(gone.body.error).toBe(
      `the output of run ${outputGone.runId} is gone from S3 (${bucket}/${outputGone.runId}/1/output.tar)`,
    );
    const misspelt = await post(`/runs/${sent.runId}/resend`, { destination: [] });
    expect(misspelt).toEqual({
      status: 400,
      body: { error: 'invalid request body: /destination: is not allowed' },
    });
    const badPort = await post(`/runs/${sent.runId}/resend`, {
      destinations: [{ host: 'h', port: 0, ae_title: 'A' }],
    });
    expect(badPort.status).toBe(400);
    expect(badPort.body.error).toMatch(/\/destinations\/0\/port/);
    expect((await post('/runs/not-a-uuid/resend')).status).toBe(400);
  });

  it('reruns a run whose model failed: a new run of the same flow file on the same receipt, linked both ways', async () => {
    const answer = await post(`/runs/${modelFailed.runId}/rerun`);
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    const newRunId = answer.body.runId as string;
    expect(newRunId).not.toBe(modelFailed.runId);
    expect(answer.body).toMatchObject({ rerunOf: modelFailed.runId, flowFile: 'ct-copy.yaml' });
    await waitFor(() => reruns.some((r) => r.body.runId === newRunId), 'the rerun published');
    const request = reruns.find((r) => r.body.runId === newRunId);
    expect(request?.messageId).toBe(`${modelFailed.runId}:rerun:${answer.body.rerunId as string}`);
    expect(request?.correlationId).toBe(newRunId);
    expect(request?.body).toEqual({
      runId: newRunId,
      rerunOf: modelFailed.runId,
      rerunId: answer.body.rerunId,
      requestedAt: answer.body.requestedAt,
      receiptId: modelFailed.receiptId,
      flowFile: 'ct-copy.yaml',
      flowName: 'CT copy',
      flowVersion: '1.0',
      bucket,
      tarKey: `${modelFailed.receiptId}.tar`,
      indexKey: `${modelFailed.receiptId}.index.jsonl`,
      tarSubdir: [],
      callingAeTitle: 'SCANNER1',
      callingHost: '10.0.0.7',
    });
    // The tracker shows the new run at once (pending until the fingerprinter matched it).
    await waitFor(async () => (await get(`/runs/${newRunId}`)).id === newRunId, 'the new run tracked');
    expect(await get(`/runs/${newRunId}`)).toMatchObject({
      id: newRunId,
      status: 0,
      flowFile: 'ct-copy.yaml',
      receiptId: modelFailed.receiptId,
      rerunOf: modelFailed.runId,
      reruns: [],
    });
    expect((await get(`/runs/${modelFailed.runId}`)).reruns).toEqual([
      { runId: newRunId, rerunId: answer.body.rerunId, requestedAt: answer.body.requestedAt },
    ]);
  });

  it('refuses a rerun of a run in progress, or of a receipt gone from S3', async () => {
    expect((await post(`/runs/${sending.runId}/rerun`)).status).toBe(409);
    const gone = await post(`/runs/${sendFailed.runId}/rerun`);
    expect(gone.status).toBe(409);
    expect(gone.body.error).toBe(
      `receipt ${sendFailed.receiptId} of run ${sendFailed.runId} is gone from S3 (${bucket}/${sendFailed.receiptId}.index.jsonl)`,
    );
    expect((await post(`/runs/${sent.runId}/rerun`, { flow: 'x' })).status).toBe(400);
  });
});

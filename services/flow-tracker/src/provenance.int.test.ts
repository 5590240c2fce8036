import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createStorage } from '@dicomflow/storage';
import { formatDeliveredLine, formatReceiptIndex, type StudyReceived } from '@dicomflow/messages';
import { removeBucketAndObjects, testStorageConfig, uniqueBucketName } from '@dicomflow/storage/testing';
import { waitFor } from '@dicomflow/test-helpers';
import { runStory, studyReceived, type RunStory, type StoryEvent } from './testing/run-story.js';
import {
  eventsHandled,
  newIsolation,
  startTracker,
  testPool,
  TestPublisher,
} from './testing/tracker-harness.js';

const IMAGE_ID = (step: number): string => `sha256:${String(step).repeat(64)}`;
const DIGEST = (step: number): string => `registry.example/model-${step}@sha256:${'d'.repeat(63)}${step}`;

/** The SOP Instance UIDs of a receipt, as its index lists them: `<series>.<n>`. */
function sopUids(received: StudyReceived): string[] {
  return received.studies.flatMap((study) =>
    study.series.flatMap((s) =>
      Array.from({ length: s.instanceCount }, (_, i) => `${s.seriesInstanceUid}.${i + 1}`),
    ),
  );
}

/** The receipt index storescp would write for `received` (instances `<series>.<n>`, or the given UIDs). */
function indexOf(received: StudyReceived, uids: Record<string, readonly string[]> = {}): Buffer {
  const instances = received.studies.flatMap((study) =>
    study.series.flatMap((series) =>
      (
        uids[series.seriesInstanceUid] ?? sopUids({ ...received, studies: [{ ...study, series: [series] }] })
      ).map((sopInstanceUid, i) => ({
        member: `${series.seriesInstanceUid}/${i}.dcm`,
        size: 100,
        sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
        sopInstanceUid,
        studyInstanceUid: study.studyInstanceUid,
        seriesInstanceUid: series.seriesInstanceUid,
        transferSyntaxUid: '1.2.840.10008.1.2.1',
        elements: {},
      })),
    ),
  );
  return Buffer.from(formatReceiptIndex({ receiptId: received.receiptId, instances }));
}

/** The story's events with the image facts a consumer reports and the delivered manifest named. */
function withProvenance(story: RunStory, bucket: string): StoryEvent[] {
  return story.events.map(({ messageId, event }) => {
    if (event.routingKey === 'job.started')
      return {
        messageId,
        event: {
          ...event,
          body: { ...event.body, imageId: IMAGE_ID(event.body.step), repoDigests: [DIGEST(event.body.step)] },
        },
      };
    if (event.routingKey === 'send.finished')
      return {
        messageId,
        event: {
          ...event,
          body: { ...event.body, delivered: { bucket, key: `${story.runId}/delivered.jsonl` } },
        },
      };
    return { messageId, event };
  });
}

interface Json {
  [key: string]: unknown;
}

describe('flow-tracker provenance', () => {
  const storage = createStorage(testStorageConfig());
  const bucket = uniqueBucketName('tracker-prov');
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = testPool();
    await storage.ensureBucket(bucket);
  });

  afterAll(async () => {
    await removeBucketAndObjects(storage, bucket);
    await pool.end();
  });

  it('links every delivered instance to its run, step, flow hash, image digests and received instances', async () => {
    const isolation = newIsolation();
    const publisher = await TestPublisher.open(isolation);
    const tracker = await startTracker(isolation);
    const get = async (path: string): Promise<{ status: number; body: Json }> => {
      const res = await tracker.api(path);
      return { status: res.status, body: (await res.json()) as Json };
    };
    try {
      const story = runStory({ bucket, models: 2, seriesCounts: [3, 2] });
      const received = story.events[0]?.event;
      if (received?.routingKey !== 'study.received') throw new Error('story starts with study.received');
      const inputs = sopUids(received.body);
      const outputs = ['2.25.100.1', '2.25.100.2'];
      await storage.putBuffer(bucket, received.body.indexKey, indexOf(received.body));
      await storage.putBuffer(
        bucket,
        `${story.runId}/delivered.jsonl`,
        outputs
          .map((sopInstanceUid) => formatDeliveredLine({ sopInstanceUid, target: 'PACS@pacs.example:104' }))
          .join(''),
      );
      const events = withProvenance(story, bucket);
      // Everything twice (a redelivery of each event): nothing may be recorded twice.
      await publisher.publish(events);
      await publisher.publish(events);
      await waitFor(
        async () => (await eventsHandled(tracker.baseUrl)) >= 2 * events.length,
        'events handled',
      );

      const run = await get(`/runs/${story.runId}/provenance`);
      expect(run.status).toBe(200);
      expect(run.body).toMatchObject({
        runId: story.runId,
        statusName: 'sent',
        flow: { name: 'CT copy', version: '1.0', file: 'ct-copy.yaml', hash: 'ab'.repeat(32) },
        receipt: { receiptId: story.receiptId, sender: 'SCANNER1@10.0.0.7', instanceCount: 5 },
      });
      expect(run.body.steps).toEqual([
        expect.objectContaining({
          step: 0,
          image: 'model-0:1',
          imageId: IMAGE_ID(0),
          repoDigests: [DIGEST(0)],
          queue: 'job.cpu',
          worker: 'worker-1',
          queueWaitMs: 3000,
          runningMs: 7000,
          exitCode: 0,
        }),
        expect.objectContaining({ step: 1, image: 'model-1:1', imageId: IMAGE_ID(1), queue: 'job.gpu' }),
      ]);
      expect((run.body.receivedInstances as Json[]).map((i) => i.sopInstanceUid)).toEqual([...inputs].sort());
      expect(run.body.deliveredInstances).toEqual(
        outputs.map((sopInstanceUid) => ({
          sopInstanceUid,
          runId: story.runId,
          step: 1,
          destination: 'PACS@pacs.example:104',
          resendId: null,
          deliveredAt: expect.any(String) as unknown,
        })),
      );

      // An output back to what it came from.
      const out = await get(`/instances/${outputs[0] ?? ''}`);
      expect(out.status).toBe(200);
      expect(out.body).toMatchObject({ sopInstanceUid: outputs[0], received: [] });
      expect(out.body.delivered).toEqual([expect.objectContaining({ runId: story.runId, step: 1 })]);
      const [producer] = out.body.runs as Json[];
      expect(producer).toMatchObject({ runId: story.runId, flow: { hash: 'ab'.repeat(32) } });
      expect((producer?.receivedInstances as Json[]).map((i) => i.sopInstanceUid)).toEqual(
        [...inputs].sort(),
      );

      // An input forward to the run that used it.
      const input = await get(`/instances/${inputs[0] ?? ''}`);
      expect(input.body.received).toEqual([
        expect.objectContaining({ receiptId: story.receiptId, usedBy: [story.runId] }),
      ]);

      const counts = await pool.query<{ received: string; delivered: string }>(
        `SELECT (SELECT count(*) FROM "${isolation.schema}".received_instances) AS received,
                (SELECT count(*) FROM "${isolation.schema}".delivered_instances) AS delivered`,
      );
      expect(counts.rows[0]).toEqual({ received: '5', delivered: '2' });

      expect((await get('/instances/1.2.3.999')).status).toBe(404);
      const bad = await get('/instances/not-a-uid');
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toMatch(/sopInstanceUid/);
      expect((await get('/runs/00000000-0000-4000-8000-000000000000/provenance')).status).toBe(404);

      const metrics = await (await fetch(`${tracker.baseUrl}/metrics`)).text();
      // Received 10:00:00, sent 10:00:31 (two models of 12 s, dispatch and send): once, not per repeat.
      expect(metrics).toMatch(/^dicomflow_tracker_result_seconds_count\{[^}]*flow="CT copy"\} 1$/m);
      expect(metrics).toMatch(/^dicomflow_tracker_result_seconds_sum\{[^}]*flow="CT copy"\} 31$/m);
    } finally {
      await tracker.close();
      await publisher.cleanup(pool);
    }
  });

  it('counts an instance received again in a later receipt once per series', async () => {
    const isolation = newIsolation();
    const publisher = await TestPublisher.open(isolation);
    const tracker = await startTracker(isolation);
    try {
      const studyInstanceUid = `1.2.826.0.1.${Date.now()}`;
      const first = studyReceived({ studyInstanceUid, seriesCounts: [3, 2], receivedAt: new Date(), bucket });
      // The sender sends series 1 again, with one instance more, and an index that is gone for a third.
      const second = studyReceived({
        studyInstanceUid,
        seriesCounts: [4],
        receivedAt: new Date(Date.now() + 60_000),
        bucket,
      });
      const third = studyReceived({
        studyInstanceUid,
        seriesCounts: [0, 1],
        receivedAt: new Date(Date.now() + 120_000),
        bucket,
      });
      await storage.putBuffer(bucket, first.indexKey, indexOf(first));
      await storage.putBuffer(bucket, second.indexKey, indexOf(second));
      const events = [first, second, third].map((body, i) => ({
        messageId: `receipt-${String(i)}-${body.receiptId}`,
        event: { routingKey: 'study.received' as const, body },
      }));
      await publisher.publish(events);
      await waitFor(async () => (await eventsHandled(tracker.baseUrl)) >= events.length, 'events handled');
      const study = (await (await tracker.api(`/studies/${studyInstanceUid}`)).json()) as Json;
      // Series 1: 1-3 then 1-4 -> 4; series 2: 2 (indexed) + 1 (a receipt whose index is gone) -> 3.
      expect(study).toMatchObject({ revision: 3, seriesCount: 2, instanceCount: 7 });
      expect(study.series).toEqual([
        { seriesInstanceUid: `${studyInstanceUid}.1`, modality: 'CT', instanceCount: 4 },
        { seriesInstanceUid: `${studyInstanceUid}.2`, modality: 'CT', instanceCount: 3 },
      ]);
      const again = (await (await tracker.api(`/instances/${studyInstanceUid}.1.1`)).json()) as Json;
      expect((again.received as Json[]).map((r) => r.receiptId)).toEqual([first.receiptId, second.receiptId]);
    } finally {
      await tracker.close();
      await publisher.cleanup(pool);
    }
  });
});

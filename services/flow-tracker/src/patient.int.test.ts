import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createStorage } from '@dicomflow/storage';
import { formatReceiptIndex } from '@dicomflow/messages';
import { removeBucketAndObjects, testStorageConfig, uniqueBucketName } from '@dicomflow/storage/testing';
import { waitFor } from '@dicomflow/test-helpers';
import { pseudonym } from './patient/patient-column.js';
import { runStory, type RunStory } from './testing/run-story.js';
import {
  eventsHandled,
  newIsolation,
  runRow,
  startTracker,
  testPool,
  TestPublisher,
} from './testing/tracker-harness.js';

const PATIENT_NAME = 'Doe^Jane';
const KEY = 'test-pseudonym-key-0123456789abcdef';

/** A receipt index whose instances name the patient (what storescp writes next to the tar). */
function indexOf(story: RunStory): Buffer {
  const received = story.events[0]?.event;
  if (received?.routingKey !== 'study.received') throw new Error('story starts with study.received');
  const instances = received.body.studies.flatMap((study) =>
    study.series.flatMap((series) =>
      Array.from({ length: series.instanceCount }, (_, i) => ({
        member: `${series.seriesInstanceUid}/${i}.dcm`,
        size: 100,
        sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
        sopInstanceUid: `${series.seriesInstanceUid}.${i + 1}`,
        studyInstanceUid: study.studyInstanceUid,
        seriesInstanceUid: series.seriesInstanceUid,
        transferSyntaxUid: '1.2.840.10008.1.2.1',
        elements: {
          '00100010': { vr: 'PN', Value: [{ Alphabetic: PATIENT_NAME }] },
          '00080060': { vr: 'CS', Value: ['CT'] },
        },
      })),
    ),
  );
  return Buffer.from(formatReceiptIndex({ receiptId: story.receiptId, instances }));
}

describe('flow-tracker patient column (S3 receipt index)', () => {
  const storage = createStorage(testStorageConfig());
  const bucket = uniqueBucketName('tracker');
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = testPool();
    await storage.ensureBucket(bucket);
  });

  afterAll(async () => {
    await removeBucketAndObjects(storage, bucket);
    await pool.end();
  });

  it.each([
    ['none', ''],
    ['initials', 'JD'],
    ['pseudonym', pseudonym(PATIENT_NAME, KEY)],
  ] as const)('PATIENT_COLUMN=%s stores %j and never the name', async (mode, expected) => {
    const isolation = newIsolation();
    const publisher = await TestPublisher.open(isolation);
    const tracker = await startTracker(isolation, { PATIENT_COLUMN: mode, PATIENT_PSEUDONYM_KEY: KEY });
    try {
      const story = runStory({ bucket });
      await storage.putBuffer(bucket, `${story.receiptId}.index.jsonl`, indexOf(story));
      // The run first, its receipt last: the patient column reaches a run row recorded before it.
      const [received, ...rest] = story.events;
      const events = [...rest, ...(received ? [received] : [])];
      await publisher.publish(events);
      await waitFor(async () => (await eventsHandled(tracker.baseUrl)) >= events.length, 'events handled');
      expect(await runRow(pool, isolation.schema, story.runId)).toMatchObject({
        status: 4,
        patient: expected,
      });
      for (const table of ['runs', 'receipts', 'events', 'steps', 'studies', 'study_receipts']) {
        const { rows } = await pool.query<{ n: string; hits: string }>(
          `SELECT count(*) AS n, count(*) FILTER (WHERE t::text ILIKE '%doe%') AS hits FROM "${isolation.schema}".${table} t`,
        );
        expect(Number(rows[0]?.n), table).toBeGreaterThan(0);
        expect(Number(rows[0]?.hits), table).toBe(0);
      }
    } finally {
      await tracker.close();
      await publisher.cleanup(pool);
    }
  });

  it('records a receipt whose index is gone, with the patient column empty', async () => {
    const isolation = newIsolation();
    const publisher = await TestPublisher.open(isolation);
    const tracker = await startTracker(isolation, { PATIENT_COLUMN: 'initials' });
    try {
      const story = runStory({ bucket });
      await publisher.publish(story.events);
      await waitFor(
        async () => (await eventsHandled(tracker.baseUrl)) >= story.events.length,
        'events handled',
      );
      expect(await runRow(pool, isolation.schema, story.runId)).toMatchObject({
        status: 4,
        patient: '',
        uid: story.studyInstanceUid,
      });
    } finally {
      await tracker.close();
      await publisher.cleanup(pool);
    }
  });

  it('refuses to start with PATIENT_COLUMN=pseudonym and no key', async () => {
    await expect(startTracker(newIsolation(), { PATIENT_COLUMN: 'pseudonym' })).rejects.toThrow(
      /PATIENT_PSEUDONYM_KEY/,
    );
  });
});

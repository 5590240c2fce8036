import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createStorage } from '@dicomflow/storage';
import { removeBucketAndObjects } from '@dicomflow/storage/testing';
import { testStorageConfig, waitFor } from '@dicomflow/test-helpers';
import type { TrackedEvent } from './events/tracked-event.js';
import { runStory, type StoryEvent } from './testing/run-story.js';
import {
  eventsHandled,
  newIsolation,
  startTracker,
  testPool,
  TestPublisher,
  type InProcessTracker,
  type Isolation,
} from './testing/tracker-harness.js';

/**
 * Model logs never travel on the bus: job.finished and job.failed name where the consumer stored the log,
 * and the tracker reads it into its own database.
 */
describe('flow-tracker: step logs read from S3', () => {
  const storage = createStorage(testStorageConfig());
  const bucket = `tracker-logs-${randomUUID().slice(0, 8)}`;
  let isolation: Isolation;
  let tracker: InProcessTracker;
  let publisher: TestPublisher;
  let pool: pg.Pool;

  beforeAll(async () => {
    await storage.ensureBucket(bucket);
    pool = testPool();
    isolation = newIsolation();
    publisher = await TestPublisher.open(isolation);
    tracker = await startTracker(isolation);
  });

  afterAll(async () => {
    await tracker.close();
    await publisher.cleanup(pool);
    await pool.end();
    await removeBucketAndObjects(storage, bucket);
  });

  /** The story's job outcomes without a log of their own, pointing at `<runId>/<step>/log.txt` instead. */
  function withLogLocations(events: readonly StoryEvent[]): StoryEvent[] {
    return events.map(({ messageId, event }) => {
      if (event.routingKey !== 'job.finished' && event.routingKey !== 'job.failed')
        return { messageId, event };
      const { logExcerpt: _dropped, ...body } = event.body;
      const log = { bucket, key: `${body.runId}/${body.step}/log.txt` };
      return { messageId, event: { ...event, body: { ...body, log } } as TrackedEvent };
    });
  }

  it('keeps the log of each step in the steps table; a log that is gone leaves the step without one', async () => {
    const story = runStory({ failAtStep: 1 });
    await storage.putBuffer(bucket, `${story.runId}/0/log.txt`, 'step 0: loaded 3 slices\n');
    await storage.putBuffer(bucket, `${story.runId}/1/log.txt`, 'step 1: weights missing\n');
    const gone = runStory({ models: 1, noSend: true });
    const events = [...withLogLocations(story.events), ...withLogLocations(gone.events)];
    await publisher.publish(events);
    await waitFor(async () => (await eventsHandled(tracker.baseUrl)) >= events.length, 'events handled');

    const { rows } = await pool.query(
      `SELECT run_id, step, state, log FROM "${isolation.schema}".steps WHERE run_id = ANY($1) ORDER BY run_id = $2 DESC, step`,
      [[story.runId, gone.runId], story.runId],
    );
    expect(rows).toEqual([
      { run_id: story.runId, step: 0, state: 'finished', log: 'step 0: loaded 3 slices\n' },
      { run_id: story.runId, step: 1, state: 'failed', log: 'step 1: weights missing\n' },
      { run_id: gone.runId, step: 0, state: 'finished', log: null },
    ]);
  });
});

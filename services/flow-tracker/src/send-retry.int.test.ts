// send.retrying through the real broker and database: stored in send_retries (migration), shown by
// GET /runs/:id as waitingFor while the run is sending, and no longer once the send ended.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { waitFor } from '@dicomflow/test-helpers';
import { runStory } from './testing/run-story.js';
import {
  eventsHandled,
  newIsolation,
  startTracker,
  testPool,
  TestPublisher,
  type InProcessTracker,
} from './testing/tracker-harness.js';

interface RunDetail {
  status: number;
  waitingFor: string | null;
  sendRetries: {
    destination: string;
    attempt: number;
    error: { code: string; message: string };
    nextAttemptAt: string;
  }[];
}

describe('flow-tracker: a delivery being retried', () => {
  let pool: pg.Pool;
  let tracker: InProcessTracker;
  let publisher: TestPublisher;

  const detail = async (runId: string): Promise<RunDetail> => {
    const response = await tracker.api(`/runs/${runId}`);
    expect(response.status).toBe(200);
    return (await response.json()) as RunDetail;
  };

  beforeAll(async () => {
    pool = testPool();
    const isolation = newIsolation();
    publisher = await TestPublisher.open(isolation);
    tracker = await startTracker(isolation);
  });

  afterAll(async () => {
    await tracker.close();
    await publisher.cleanup(pool);
    await pool.end();
  });

  it('shows the destination, last error and next attempt while sending, and null once sent', async () => {
    const story = runStory({ sendRetries: 2 });
    // Everything up to the outcome: the run is sending and its destination is being retried.
    const outcome = story.events.at(-1);
    const before = story.events.slice(0, -1);
    if (outcome?.event.routingKey !== 'send.finished')
      throw new Error('the story should end with send.finished');
    await publisher.publish(before);
    await waitFor(async () => (await eventsHandled(tracker.baseUrl)) >= before.length, 'events handled');

    const sending = await detail(story.runId);
    expect(sending.status).toBe(3);
    expect(sending.waitingFor).toBe(
      'delivery to PACS@pacs.example:104 is retried: attempt 2 of 10 failed ' +
        '(ECONNREFUSED: pacs.example:104: connect ECONNREFUSED 10.0.0.9:104); next attempt at 2026-01-05T10:00:31.000Z',
    );
    expect(sending.sendRetries).toMatchObject([
      {
        destination: 'PACS@pacs.example:104',
        attempt: 2,
        error: { code: 'ECONNREFUSED' },
        nextAttemptAt: '2026-01-05T10:00:31.000Z',
      },
    ]);
    const { rows } = await pool.query<{ target: string; attempt: number }>(
      `SELECT target, attempt FROM "${publisher.isolation.schema}".send_retries WHERE run_id = $1`,
      [story.runId],
    );
    expect(rows).toEqual([{ target: 'PACS@pacs.example:104', attempt: 2 }]);

    await publisher.publish([outcome]);
    await waitFor(async () => (await detail(story.runId)).status === 4, 'the run to be sent');
    const sent = await detail(story.runId);
    expect(sent.waitingFor).toBeNull();
    expect(sent.sendRetries).toHaveLength(1);
  });
});

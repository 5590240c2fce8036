import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import type pg from 'pg';
import { deadQueueName, suiteQueues } from '@dicomflow/broker';
import { testBrokerConfig, waitFor } from '@dicomflow/test-helpers';
import { TRACKER_MIGRATIONS } from './db/migrations.js';
import { runStory } from './testing/run-story.js';
import {
  eventsHandled,
  newIsolation,
  runRow,
  startTracker,
  testPool,
  TestPublisher,
  type Isolation,
} from './testing/tracker-harness.js';

describe('flow-tracker lifecycle', () => {
  let pool: pg.Pool;
  let isolation: Isolation;
  let publisher: TestPublisher;

  beforeAll(async () => {
    pool = testPool();
    isolation = newIsolation();
    publisher = await TestPublisher.open(isolation);
  });

  afterAll(async () => {
    await publisher.cleanup(pool);
    await pool.end();
  });

  it('dead-letters an event that fails its schema and goes on with the next', async () => {
    const tracker = await startTracker(isolation);
    try {
      const connection = await amqp.connect(testBrokerConfig());
      const channel = await connection.createConfirmChannel();
      channel.publish(
        isolation.exchange,
        'job.started',
        Buffer.from(JSON.stringify({ runId: 'not-a-uuid' })),
        {
          messageId: 'broken-1',
          type: 'job.started',
          persistent: true,
        },
      );
      await channel.waitForConfirms();
      const dead = deadQueueName(suiteQueues(isolation.queuePrefix).flowTracker.name);
      await waitFor(async () => (await channel.checkQueue(dead)).messageCount === 1, 'the dead letter');
      await connection.close();

      const story = runStory();
      await publisher.publish(story.events);
      await waitFor(
        async () => (await eventsHandled(tracker.baseUrl)) >= story.events.length,
        'events handled',
      );
      expect(await runRow(pool, isolation.schema, story.runId)).toMatchObject({ status: 4 });
    } finally {
      await tracker.close();
    }
  });

  it('restarts on the same schema without re-applying migrations, keeps its rows, and closes twice', async () => {
    const story = runStory({ noSend: true });
    const first = await startTracker(isolation);
    await publisher.publish(story.events.slice(0, -1));
    await waitFor(
      async () => (await eventsHandled(first.baseUrl)) >= story.events.length - 1,
      'events handled',
    );
    await first.close();
    await first.service.close();

    // Published while no tracker runs: the suite queue keeps it.
    await publisher.publish(story.events.slice(-1));
    const second = await startTracker(isolation);
    try {
      await waitFor(async () => (await eventsHandled(second.baseUrl)) >= 1, 'the event sent while stopped');
      expect(await runRow(pool, isolation.schema, story.runId)).toMatchObject({ status: 2 });
      const { rows } = await pool.query<{ version: number }>(
        `SELECT version FROM "${isolation.schema}".migrations ORDER BY version`,
      );
      // Each migration once, although two trackers started on the schema.
      expect(rows.map((r) => r.version)).toEqual(TRACKER_MIGRATIONS.map((_, n) => n + 1));
      const ready = await fetch(`${second.baseUrl}/readyz`);
      expect(ready.status).toBe(200);
    } finally {
      await second.close();
    }
  });
});

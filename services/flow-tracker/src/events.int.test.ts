import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { waitFor } from '@dicomflow/test-helpers';
import { runStory, shuffled, type RunStory, type StoryEvent } from './testing/run-story.js';
import {
  eventsHandled,
  newIsolation,
  runRow,
  runTables,
  startTracker,
  testPool,
  TestPublisher,
  type InProcessTracker,
  type Isolation,
} from './testing/tracker-harness.js';

/** One tracker with its own exchange, queues and schema, and a publisher on them. */
interface World {
  readonly isolation: Isolation;
  readonly tracker: InProcessTracker;
  readonly publisher: TestPublisher;
  published: number;
}

async function openWorld(): Promise<World> {
  const isolation = newIsolation();
  const publisher = await TestPublisher.open(isolation);
  const tracker = await startTracker(isolation);
  return { isolation, tracker, publisher, published: 0 };
}

/** Publishes and waits until the tracker handled every message published so far. */
async function deliver(world: World, events: readonly StoryEvent[]): Promise<void> {
  await world.publisher.publish(events);
  world.published += events.length;
  await waitFor(
    async () => (await eventsHandled(world.tracker.baseUrl)) >= world.published,
    'events handled',
  );
}

describe('flow-tracker events (RabbitMQ, PostgreSQL)', () => {
  let pool: pg.Pool;
  let inOrder: World;
  let mixed: World;
  const stories: RunStory[] = [];

  beforeAll(async () => {
    pool = testPool();
    inOrder = await openWorld();
    mixed = await openWorld();
    stories.push(
      runStory(),
      runStory({ failAtStep: 1 }),
      runStory({ sendFails: true }),
      runStory({ models: 1, noSend: true }),
    );
  });

  afterAll(async () => {
    for (const world of [inOrder, mixed]) {
      await world.tracker.close();
      await world.publisher.cleanup(pool);
    }
    await pool.end();
  });

  it('takes a run to status 4 (sent), one to 400 at a failed job, one to 400 at a failed send', async () => {
    for (const story of stories) await deliver(inOrder, story.events);
    const schema = inOrder.isolation.schema;
    const [happy, jobFailed, sendFailed, notSent] = stories as [RunStory, RunStory, RunStory, RunStory];

    const sent = await runRow(pool, schema, happy.runId);
    expect(sent).toMatchObject({
      status: 4,
      name: 'CT copy',
      version: '1.0',
      priority: 2,
      uid: happy.studyInstanceUid,
      sender: 'SCANNER1@10.0.0.7',
      destinations: 'PACS@pacs.example:104',
      patient: '',
      failure_reason: null,
      receipt_id: happy.receiptId,
      step_count: 2,
    });
    expect((sent?.received as Date).toISOString()).toBe('2026-01-05T10:00:00.000Z');
    for (const column of ['ts', 'dispatched', 'finished', 'sent'])
      expect(sent?.[column], column).toBeInstanceOf(Date);
    const { rows: steps } = await pool.query(
      `SELECT step, state, image, queue, worker, exit_code, log, started, ended FROM "${schema}".steps WHERE run_id = $1 ORDER BY step`,
      [happy.runId],
    );
    expect(
      steps.map((s: Record<string, unknown>) => [s.step, s.state, s.image, s.queue, s.exit_code, s.worker]),
    ).toEqual([
      [0, 'finished', 'model-0:1', 'job.cpu', 0, 'worker-1'],
      [1, 'finished', 'model-1:1', 'job.gpu', 0, 'worker-1'],
    ]);

    expect(await runRow(pool, schema, jobFailed.runId)).toMatchObject({
      status: 400,
      failure_reason: 'exit-code',
      failure_message: 'the container exited with code 3',
      sent: null,
    });
    const { rows: failedStep } = await pool.query(
      `SELECT state, exit_code, log FROM "${schema}".steps WHERE run_id = $1 AND step = 1`,
      [jobFailed.runId],
    );
    expect(failedStep).toEqual([{ state: 'failed', exit_code: 3, log: 'boom\n' }]);
    expect(await runRow(pool, schema, sendFailed.runId)).toMatchObject({
      status: 400,
      failure_reason: 'send-unreachable',
      failure_message: 'PACS@pacs.example:104 unreachable after 3 attempts',
    });
    expect(await runRow(pool, schema, notSent.runId)).toMatchObject({ status: 2, sent: null });
  });

  it('gives identical rows for shuffled orders with duplicates (job.finished before flow.matched, ...)', async () => {
    // Every story's events, shuffled together and with a third of them sent twice.
    const all = stories.flatMap((s) => s.events);
    const repeated = all.filter((_, i) => i % 3 === 0);
    const order = shuffled([...all, ...repeated], 7);
    const matchedAt = order.findIndex((e) => e.event.routingKey === 'flow.matched');
    const finishedAt = order.findIndex((e) => e.event.routingKey === 'job.finished');
    expect(matchedAt).toBeGreaterThanOrEqual(0);
    // Put some job.finished ahead of every flow.matched, whatever the shuffle did.
    const early = order.splice(finishedAt, 1);
    order.unshift(...early);
    await deliver(mixed, order);
    const ids = stories.map((s) => s.runId);
    const expected = await runTables(pool, inOrder.isolation.schema, ids);
    expect(await runTables(pool, mixed.isolation.schema, ids)).toEqual(expected);

    // The same events again, in yet another order: nothing changes.
    await deliver(mixed, shuffled(all, 99));
    expect(await runTables(pool, mixed.isolation.schema, ids)).toEqual(expected);
  });

  it('gives the same rows with two replicas sharing the queue (competing consumers)', async () => {
    const isolation = newIsolation();
    const publisher = await TestPublisher.open(isolation);
    const replicas = [await startTracker(isolation), await startTracker(isolation)];
    try {
      const all = stories.flatMap((s) => s.events);
      const order = shuffled([...all, ...all], 3);
      await publisher.publish(order);
      const handled = async (): Promise<number> =>
        (await Promise.all(replicas.map((r) => eventsHandled(r.baseUrl)))).reduce((a, b) => a + b, 0);
      await waitFor(async () => (await handled()) >= order.length, 'events handled by the replicas');
      const ids = stories.map((s) => s.runId);
      expect(await runTables(pool, isolation.schema, ids)).toEqual(
        await runTables(pool, inOrder.isolation.schema, ids),
      );
    } finally {
      for (const replica of replicas) await replica.close();
      await publisher.cleanup(pool);
    }
  });

  it('never moves a status back: a late job.started leaves a sent run at 4', async () => {
    const happy = stories[0] as RunStory;
    const started = happy.events.filter((e) => e.event.routingKey === 'job.started');
    const lateStarted = started.map((e) => ({ ...e, messageId: `${e.messageId}:late-copy` }));
    await deliver(inOrder, lateStarted);
    expect(await runRow(pool, inOrder.isolation.schema, happy.runId)).toMatchObject({ status: 4 });
  });

  it('keeps a study manifest whose revision grows when more instances arrive later', async () => {
    const first = runStory({ seriesCounts: [3, 2], receivedAt: new Date('2026-01-06T08:00:00Z') });
    const uid = first.studyInstanceUid;
    await deliver(inOrder, first.events.slice(0, 1));
    const study = async (): Promise<Record<string, unknown> | undefined> =>
      (
        await pool.query(
          `SELECT * FROM "${inOrder.isolation.schema}".studies WHERE study_instance_uid = $1`,
          [uid],
        )
      ).rows[0] as Record<string, unknown> | undefined;
    expect(await study()).toMatchObject({ revision: 1, series_count: 2, instance_count: 5 });

    const later = runStory({
      studyInstanceUid: uid,
      seriesCounts: [1, 0, 4],
      receivedAt: new Date('2026-01-06T08:30:00Z'),
    });
    await deliver(inOrder, later.events.slice(0, 1));
    expect(await study()).toMatchObject({ revision: 2, series_count: 3, instance_count: 10 });

    // The same receipt again (a redelivery, or a republish under a new message id) changes nothing.
    await deliver(inOrder, [{ ...(later.events[0] as StoryEvent), messageId: 'republished-receipt' }]);
    expect(await study()).toMatchObject({ revision: 2, instance_count: 10 });

    const response = await inOrder.tracker.api(`/studies/${uid}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      studyInstanceUid: uid,
      revision: 2,
      seriesCount: 3,
      instanceCount: 10,
      series: [
        { seriesInstanceUid: `${uid}.1`, instanceCount: 4 },
        { seriesInstanceUid: `${uid}.2`, instanceCount: 2 },
        { seriesInstanceUid: `${uid}.3`, instanceCount: 4 },
      ],
      receipts: [
        { revision: 1, receiptId: first.receiptId, instanceCount: 5 },
        { revision: 2, receiptId: later.receiptId, instanceCount: 5 },
      ],
    });
  });
});

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { waitFor } from '@dicomflow/test-helpers';
import { runStory, type RunStory } from './testing/run-story.js';
import {
  eventsHandled,
  newIsolation,
  startTracker,
  testPool,
  TestPublisher,
  type InProcessTracker,
} from './testing/tracker-harness.js';

interface RunsPage {
  runs: { id: string; status: number; statusName: string; name: string; failure: unknown }[];
  total: number;
  limit: number;
  offset: number;
}

describe('flow-tracker API', () => {
  let pool: pg.Pool;
  let tracker: InProcessTracker;
  let publisher: TestPublisher;
  let a: RunStory, b: RunStory, c: RunStory, d: RunStory;

  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await tracker.api(path);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const ids = async (query: string): Promise<string[]> => {
    const { status, body } = await get(`/runs${query}`);
    expect(status, JSON.stringify(body)).toBe(200);
    return (body as unknown as RunsPage).runs.map((r) => r.id);
  };

  beforeAll(async () => {
    pool = testPool();
    const isolation = newIsolation();
    publisher = await TestPublisher.open(isolation);
    tracker = await startTracker(isolation);
    a = runStory({ receivedAt: new Date('2026-02-01T10:00:00Z') });
    b = runStory({ failAtStep: 0, flowName: 'MR prep', receivedAt: new Date('2026-02-01T11:00:00Z') });
    c = runStory({ noSend: true, receivedAt: new Date('2026-02-01T12:00:00Z') });
    d = runStory({ receivedAt: new Date('2026-02-02T09:00:00Z') });
    const events = [a, b, c, d].flatMap((s) => s.events);
    await publisher.publish(events);
    await waitFor(async () => (await eventsHandled(tracker.baseUrl)) >= events.length, 'events handled');
  });

  afterAll(async () => {
    await tracker.close();
    await publisher.cleanup(pool);
    await pool.end();
  });

  it('lists runs newest first, filtered by status (code or name), flow and time range', async () => {
    expect(await ids('')).toEqual([d.runId, c.runId, b.runId, a.runId]);
    expect(await ids('?status=4')).toEqual([d.runId, a.runId]);
    expect(await ids('?status=sent')).toEqual([d.runId, a.runId]);
    expect(await ids('?status=400')).toEqual([b.runId]);
    expect(await ids('?status=finished')).toEqual([c.runId]);
    expect(await ids('?status=pending')).toEqual([]);
    expect(await ids('?flow=MR%20prep')).toEqual([b.runId]);
    expect(await ids('?flow=CT%20copy&status=4')).toEqual([d.runId, a.runId]);
    expect(await ids('?flow=ct-copy.yaml')).toHaveLength(4);
    expect(await ids('?from=2026-02-01T10:30:00Z&to=2026-02-02T00:00:00Z')).toEqual([c.runId, b.runId]);
    expect(await ids('?from=2026-02-02T00:00:00Z')).toEqual([d.runId]);
    expect(await ids('?to=2026-02-01T10:30:00Z')).toEqual([a.runId]);
    const { body } = await get('/runs?status=failed');
    expect((body as unknown as RunsPage).runs[0]).toMatchObject({
      status: 400,
      statusName: 'failed',
      name: 'MR prep',
      failure: { reason: 'exit-code', message: 'the container exited with code 3' },
    });
  });

  it('pages in a stable order', async () => {
    const first = await get('/runs?limit=3');
    expect(first.body).toMatchObject({ total: 4, limit: 3, offset: 0 });
    const second = await get('/runs?limit=3&offset=3');
    const pages = [...(first.body as unknown as RunsPage).runs, ...(second.body as unknown as RunsPage).runs];
    expect(pages.map((r) => r.id)).toEqual([d.runId, c.runId, b.runId, a.runId]);
    expect(await ids('?limit=3&offset=4')).toEqual([]);
  });

  it('answers a bad query with 400 and says what is wrong', async () => {
    for (const [query, words] of [
      ['?status=7', 'status'],
      ['?limit=0', 'limit'],
      ['?limit=many', 'limit'],
      ['?offset=-1', 'offset'],
      ['?from=yesterday', 'from'],
      ['?stauts=4', 'unknown query parameter "stauts"'],
    ] as const) {
      const { status, body } = await get(`/runs${query}`);
      expect(status, query).toBe(400);
      expect(String(body.error), query).toContain(words);
    }
    const badId = await get('/runs/not-a-uuid');
    expect(badId.status).toBe(400);
    expect(String(badId.body.error)).toContain('id');
    const badUid = await get('/studies/abc');
    expect(badUid.status).toBe(400);
    expect(String(badUid.body.error)).toContain('studyInstanceUid');
  });

  it('answers an unknown run or study with 404', async () => {
    const run = await get(`/runs/${randomUUID()}`);
    expect(run.status).toBe(404);
    expect(String(run.body.error)).toContain('no run');
    const study = await get('/studies/1.2.3.4.5.6.7.8.9');
    expect(study.status).toBe(404);
  });

  it('shows a run with its steps, timings and errors', async () => {
    const { status, body } = await get(`/runs/${a.runId}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      id: a.runId,
      status: 4,
      statusName: 'sent',
      uid: a.studyInstanceUid,
      received: '2026-02-01T10:00:00.000Z',
      dispatched: '2026-02-01T10:00:02.000Z',
      destinations: ['PACS@pacs.example:104'],
      timings: { receivedToDispatchedMs: 2000, runningMs: 24_000, sendingMs: 5000 },
      steps: [
        {
          step: 0,
          state: 'finished',
          image: 'model-0:1',
          exitCode: 0,
          waitingMs: 3000,
          runningMs: 7000,
          log: 'step 0 ok\n',
        },
        { step: 1, state: 'finished', image: 'model-1:1', queue: 'job.gpu', worker: 'worker-1' },
      ],
    });
    const failed = await get(`/runs/${b.runId}`);
    expect(failed.body).toMatchObject({
      status: 400,
      failure: { reason: 'exit-code' },
      steps: [{ step: 0, state: 'failed', exitCode: 3, log: 'boom\n', failure: { reason: 'exit-code' } }],
    });
  });
});

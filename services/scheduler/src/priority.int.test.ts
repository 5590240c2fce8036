import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '@dicomflow/test-helpers';
import { flowMatched } from './testing/fixtures.js';
import {
  newIsolation,
  startScheduler,
  TestBus,
  type InProcessScheduler,
} from './testing/scheduler-harness.js';

describe('scheduler: priority', () => {
  let bus: TestBus;
  let scheduler: InProcessScheduler;

  beforeEach(async () => {
    const isolation = newIsolation();
    scheduler = await startScheduler(isolation);
    bus = await TestBus.open(isolation);
    await bus.collectOutcomes();
  });

  afterEach(async () => {
    await scheduler.close();
    await bus.cleanup();
  });

  it('queues the first job of a priority-5 flow ahead of twenty priority-0 jobs', async () => {
    const routine = Array.from({ length: 20 }, () => flowMatched({ priority: 0, name: 'routine' }));
    const urgent = flowMatched({ priority: 5, name: 'urgent' });
    for (const run of routine) await bus.publishFlowMatched(run);
    await bus.publishFlowMatched(urgent);
    // No consumer yet: every first job waits in the job queue the scheduler declared.
    await waitFor(
      async () => (await bus.messageCount(bus.isolation.queues.jobs['job.cpu'])) === 21,
      '21 queued jobs',
    );

    await bus.startConsumer();
    await waitFor(() => bus.outcomes.length === 21, 'every run outcome');

    const [first, ...rest] = bus.deliveries;
    expect(first?.body.runId).toBe(urgent.runId);
    expect(first?.priority).toBe(5);
    expect(rest.map((job) => job.priority)).toEqual(Array.from({ length: 20 }, () => 0));
    expect(new Set(rest.map((job) => job.body.runId))).toEqual(new Set(routine.map((run) => run.runId)));
  });

  it('sends the follow-up job of a started flow at priority 5, ahead of new flows', async () => {
    const started = flowMatched({ models: 2, priority: 0, name: 'started' });
    await bus.publishFlowMatched(started);
    const jobsQueue = bus.isolation.queues.jobs['job.cpu'];
    await waitFor(async () => (await bus.messageCount(jobsQueue)) === 1, 'the first job of the started flow');
    const message = await bus.take(jobsQueue);
    if (!message) throw new Error('the first job vanished');
    const firstJob = JSON.parse(message.content.toString()) as Parameters<TestBus['publishJobFinished']>[0];

    const waiting = Array.from({ length: 5 }, () => flowMatched({ priority: 4, name: 'new' }));
    for (const run of waiting) await bus.publishFlowMatched(run);
    await waitFor(async () => (await bus.messageCount(jobsQueue)) === 5, 'the new flows queued');
    await bus.publishJobFinished(firstJob);
    await waitFor(async () => (await bus.messageCount(jobsQueue)) === 6, 'the follow-up job queued');

    await bus.startConsumer();
    await waitFor(() => bus.outcomes.length === 6, 'every run outcome');
    expect(bus.deliveries[0]?.messageId).toBe(`${started.runId}:job:1`);
    expect(bus.deliveries[0]?.priority).toBe(5);
  });
});

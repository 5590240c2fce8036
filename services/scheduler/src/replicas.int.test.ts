import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jobMessageId } from '@dicomflow/messages';
import { waitFor } from '@dicomflow/test-helpers';
import { flowMatched } from './testing/fixtures.js';
import {
  metricValue,
  newIsolation,
  readMetrics,
  startScheduler,
  TestBus,
  type InProcessScheduler,
  type Isolation,
} from './testing/scheduler-harness.js';

describe('scheduler: two replicas on the same queues', () => {
  let isolation: Isolation;
  let bus: TestBus;
  let replicas: InProcessScheduler[] = [];

  beforeEach(async () => {
    isolation = newIsolation();
    replicas = [await startScheduler(isolation), await startScheduler(isolation)];
    bus = await TestBus.open(isolation);
    await bus.collectOutcomes();
  });

  afterEach(async () => {
    for (const replica of replicas) await replica.close();
    await bus.cleanup();
  });

  it('share the work and publish each message once, even for messages that arrive twice', async () => {
    const runs = Array.from({ length: 10 }, () => flowMatched({ models: 3 }));
    // Every flow.matched and job.finished arrives twice, as from a publisher whose confirm was lost.
    await bus.startConsumer(undefined, { outcomeCopies: 2 });
    for (const run of runs) {
      await bus.publishFlowMatched(run);
      await bus.publishFlowMatched(run);
    }
    await waitFor(() => bus.outcomes.length >= runs.length, 'every run outcome');
    const duplicates = async (): Promise<number> => {
      let sum = 0;
      for (const replica of replicas) {
        const text = await readMetrics(replica.service.httpPort());
        sum += metricValue(text, 'dicomflow_scheduler_duplicates_total');
      }
      return sum;
    };
    // Every repeat handled (10 flow.matched, 30 job.finished): anything it published has arrived.
    await waitFor(async () => (await duplicates()) === 40, 'every repeat handled');

    const expected = runs.flatMap((run) => [0, 1, 2].map((step) => jobMessageId(run.runId, step)));
    expect(bus.deliveries.map((delivery) => delivery.messageId).sort()).toEqual(expected.sort());
    expect(bus.outcomes.map((outcome) => outcome.messageId).sort()).toEqual(
      runs.map((run) => `${run.runId}:flow.finished`).sort(),
    );
  });
});

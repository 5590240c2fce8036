import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deadQueueName } from '@dicomflow/broker';
import { loadConfig } from '@dicomflow/config';
import type { Job } from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { waitFor } from '@dicomflow/test-helpers';
import { migrate } from './db/migrations.js';
import { createPool } from './db/pool.js';
import { RunStore } from './db/run-store.js';
import { flowMatched } from './testing/fixtures.js';
import {
  metricValue,
  newIsolation,
  readMetrics,
  recordedDispatches,
  startScheduler,
  schedulerEnvironment,
  TestBus,
  type InProcessScheduler,
  type Isolation,
} from './testing/scheduler-harness.js';

describe('scheduler: failures and repeats', () => {
  let isolation: Isolation;
  /** True once every recorded dispatch of this test's world is marked as published. */
  const allMarkedDispatched = async (): Promise<boolean> =>
    [...(await recordedDispatches(isolation)).values()].every((state) => state === 'dispatched');
  let bus: TestBus;
  let scheduler: InProcessScheduler | undefined;

  beforeEach(async () => {
    isolation = newIsolation();
    bus = await TestBus.open(isolation);
    await bus.collectOutcomes();
  });

  afterEach(async () => {
    await scheduler?.close();
    scheduler = undefined;
    await bus.cleanup();
  });

  async function start(): Promise<InProcessScheduler> {
    scheduler = await startScheduler(isolation);
    return scheduler;
  }

  /** Waits for the next job in the CPU job queue and takes it (the test plays the consumer by hand). */
  async function takeJob(): Promise<{ messageId: string; body: Job }> {
    const queue = isolation.queues.jobs['job.cpu'];
    await waitFor(async () => (await bus.messageCount(queue)) > 0, 'a job');
    const message = await bus.take(queue);
    if (!message) throw new Error('the job vanished');
    return {
      messageId: String(message.properties.messageId),
      body: JSON.parse(message.content.toString()) as Job,
    };
  }

  async function metric(name: string, labels: Record<string, string>): Promise<number> {
    return metricValue(await readMetrics(scheduler?.service.httpPort() ?? 0), name, labels);
  }

  it('turns job.failed into flow.failed with the reason, and runs no further model', async () => {
    await start();
    await bus.startConsumer((job) =>
      job.step === 0
        ? { kind: 'fail', failure: { reason: 'exit-code', message: 'the model exited with 3', exitCode: 3 } }
        : { kind: 'finish' },
    );
    const run = flowMatched({ models: 2 });
    await bus.publishFlowMatched(run);
    await waitFor(() => bus.outcomesOf(run.runId).length > 0, 'the run outcome');

    expect(bus.outcomesOf(run.runId)).toEqual([
      {
        routingKey: 'flow.failed',
        messageId: `${run.runId}:flow.failed`,
        body: expect.objectContaining({
          runId: run.runId,
          receiptId: run.receiptId,
          step: 0,
          reason: 'exit-code',
          message: 'the model exited with 3',
          exitCode: 3,
        }) as unknown,
      },
    ]);
    // The 'dispatched' mark follows the publisher confirm, so it may trail the message the test received.
    await waitFor(allMarkedDispatched, 'the dispatch marks');
    expect(await recordedDispatches(isolation)).toEqual(
      new Map([
        [`${run.runId}:job:0`, 'dispatched'],
        [`${run.runId}:flow.failed`, 'dispatched'],
      ]),
    );
    expect(bus.deliveriesOf(run.runId).map((job) => job.body.step)).toEqual([0]);
  });

  it('fails a run whose flow has no models', async () => {
    await start();
    const run = flowMatched({ models: 0 });
    await bus.publishFlowMatched(run);
    await waitFor(() => bus.outcomesOf(run.runId).length > 0, 'the run outcome');
    expect(bus.outcomesOf(run.runId)[0]?.body).toMatchObject({ reason: 'no-models' });
  });

  it('dispatches once for a duplicate job.finished and a duplicate flow.matched', async () => {
    await start();
    const run = flowMatched({ models: 2 });
    await bus.publishFlowMatched(run);
    await bus.publishFlowMatched(run);
    await waitFor(
      async () =>
        (await metric('dicomflow_scheduler_duplicates_total', { routing_key: 'flow.matched' })) === 1,
      'the repeated flow.matched handled',
    );
    const first = await takeJob();
    expect(first.messageId).toBe(`${run.runId}:job:0`);
    expect(await bus.messageCount(isolation.queues.jobs['job.cpu'])).toBe(0);

    // The same job.finished twice: once redelivered as is, once from a consumer that ran the job again.
    await bus.publishJobFinished(first.body);
    await bus.publishJobFinished(first.body, randomUUID());
    await waitFor(
      async () =>
        (await metric('dicomflow_scheduler_duplicates_total', { routing_key: 'job.finished' })) === 1,
      'the repeated job.finished handled',
    );
    const second = await takeJob();
    expect(second.messageId).toBe(`${run.runId}:job:1`);
    expect(await bus.messageCount(isolation.queues.jobs['job.cpu'])).toBe(0);
    expect(await metric('dicomflow_scheduler_dispatched_total', { routing_key: 'job.cpu' })).toBe(2);
  });

  it('keeps the first outcome of a step: a later job.failed of a finished step is ignored', async () => {
    await start();
    const run = flowMatched({ models: 1 });
    await bus.publishFlowMatched(run);
    const job = await takeJob();
    await bus.publishJobFinished(job.body);
    await waitFor(() => bus.outcomesOf(run.runId).length > 0, 'the run outcome');
    await bus.publishJobFailed(job.body, { reason: 'timeout', message: 'a second copy timed out' });
    await waitFor(
      async () => (await metric('dicomflow_scheduler_ignored_total', { routing_key: 'job.failed' })) === 1,
      'the late job.failed handled',
    );
    expect(bus.outcomesOf(run.runId).map((outcome) => outcome.routingKey)).toEqual(['flow.finished']);
  });

  it('dead-letters a job.finished of a run it does not know', async () => {
    await start();
    const stranger = flowMatched({ models: 1 });
    await bus.broker.publish('job.finished', {
      runId: stranger.runId,
      step: 0,
      output: { bucket: 'runs', key: `${stranger.runId}/0/output.tar` },
    });
    const dead = deadQueueName(isolation.queues.jobFinished);
    await waitFor(async () => (await bus.messageCount(dead)) === 1, 'the dead letter');
  });

  it('publishes, when it starts, a dispatch that was recorded but not published before a crash', async () => {
    // What a scheduler killed between recording a run's first job and publishing it leaves behind.
    const config = loadConfig('scheduler', { confDir: '/nonexistent', env: schedulerEnvironment(isolation) });
    const logger = createLogger({ service: 'scheduler-test', level: 'silent' });
    const pool = createPool(config, logger);
    const run = flowMatched({ models: 1 });
    try {
      await migrate(pool, isolation.schema, logger);
      const decision = await new RunStore(pool, isolation.schema, 'runs').recordFlowMatched(run, new Date());
      expect(decision).toMatchObject({ kind: 'dispatch', created: true, dispatch: { state: 'dispatching' } });
    } finally {
      await pool.end();
    }

    await start();
    const job = await takeJob();
    expect(job.messageId).toBe(`${run.runId}:job:0`);
    expect(await metric('dicomflow_scheduler_republished_total', {})).toBe(1);
    await waitFor(allMarkedDispatched, 'the dispatch marks');
    expect(await recordedDispatches(isolation)).toEqual(new Map([[`${run.runId}:job:0`, 'dispatched']]));
  });
});

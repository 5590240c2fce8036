import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '@dicomflow/test-helpers';
import { flowMatched } from './testing/fixtures.js';
import {
  metricValue,
  newIsolation,
  readMetrics,
  recordedDispatches,
  startScheduler,
  TestBus,
  type InProcessScheduler,
} from './testing/scheduler-harness.js';

describe('scheduler: chains of models', () => {
  let bus: TestBus;
  let scheduler: InProcessScheduler;

  beforeEach(async () => {
    const isolation = newIsolation();
    scheduler = await startScheduler(isolation);
    bus = await TestBus.open(isolation);
    await bus.collectOutcomes();
    await bus.startConsumer();
  });

  afterEach(async () => {
    await scheduler.close();
    await bus.cleanup();
  });

  it('runs a one-model flow: its job at the flow priority, then flow.finished', async () => {
    const run = flowMatched({ models: 1, priority: 3 });
    await bus.publishFlowMatched(run);
    await waitFor(() => bus.outcomesOf(run.runId).length > 0, 'the run outcome');

    const jobs = bus.deliveriesOf(run.runId);
    expect(jobs.map((job) => [job.messageId, job.routingKey, job.priority, job.correlationId])).toEqual([
      [`${run.runId}:job:0`, 'job.cpu', 3, run.runId],
    ]);
    expect(jobs[0]?.body).toMatchObject({
      step: 0,
      stepCount: 1,
      model: run.flow.models[0],
      input: { kind: 'receipt', tarKey: run.tarKey, members: run.members, tarSubdir: run.tarSubdir },
      output: { bucket: 'runs', key: `${run.runId}/0/output.tar` },
    });
    expect(bus.outcomesOf(run.runId)).toEqual([
      {
        routingKey: 'flow.finished',
        messageId: `${run.runId}:flow.finished`,
        body: expect.objectContaining({
          runId: run.runId,
          stepCount: 1,
          output: { bucket: 'runs', key: `${run.runId}/0/output.tar` },
          destinations: run.flow.destinations,
          returnToSender: { host: '10.0.0.7', aeTitle: 'SCANNER1', ports: [11112] },
        }) as unknown,
      },
    ]);
    // The 'dispatched' mark follows the publisher confirm, so it may trail the message the test received.
    await waitFor(
      async () =>
        [...(await recordedDispatches(bus.isolation)).values()].every((state) => state === 'dispatched'),
      'the dispatch marks',
    );
    expect(await recordedDispatches(bus.isolation)).toEqual(
      new Map([
        [`${run.runId}:job:0`, 'dispatched'],
        [`${run.runId}:flow.finished`, 'dispatched'],
      ]),
    );
  });

  it('runs a three-model flow in order, each model reading the output of the one before', async () => {
    const run = flowMatched({ models: 3, priority: 1 });
    await bus.publishFlowMatched(run);
    await waitFor(() => bus.outcomesOf(run.runId).length > 0, 'the run outcome');

    const jobs = bus.deliveriesOf(run.runId);
    expect(jobs.map((job) => [job.body.step, job.priority, job.body.model.docker_kwargs.image])).toEqual([
      [0, 1, 'model-0:1'],
      [1, 5, 'model-1:1'],
      [2, 5, 'model-2:1'],
    ]);
    expect(jobs.map((job) => job.body.input)).toEqual([
      expect.objectContaining({ kind: 'receipt' }),
      { kind: 'step', step: 0, bucket: 'runs', key: `${run.runId}/0/output.tar` },
      { kind: 'step', step: 1, bucket: 'runs', key: `${run.runId}/1/output.tar` },
    ]);
    const outcome = bus.outcomesOf(run.runId);
    expect(outcome.map((o) => o.routingKey)).toEqual(['flow.finished']);
    expect(outcome[0]?.body).toMatchObject({ stepCount: 3, output: { key: `${run.runId}/2/output.tar` } });
  });

  it('routes a GPU model to job.gpu and the others to job.cpu', async () => {
    const run = flowMatched({ models: 3, gpu: [1] });
    await bus.publishFlowMatched(run);
    await waitFor(() => bus.outcomesOf(run.runId).length > 0, 'the run outcome');

    expect(bus.deliveriesOf(run.runId).map((job) => [job.body.step, job.routingKey])).toEqual([
      [0, 'job.cpu'],
      [1, 'job.gpu'],
      [2, 'job.cpu'],
    ]);
  });

  it('serves /healthz, /readyz with its broker and database, and /metrics', async () => {
    const run = flowMatched({ models: 2 });
    await bus.publishFlowMatched(run);
    await waitFor(() => bus.outcomesOf(run.runId).length > 0, 'the run outcome');
    const base = `http://127.0.0.1:${scheduler.service.httpPort()}`;

    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      checks: { broker: { ok: true }, db: { ok: true } },
      details: { consuming: true },
    });
    const metrics = await readMetrics(scheduler.service.httpPort());
    expect(metricValue(metrics, 'dicomflow_scheduler_dispatched_total', { routing_key: 'job.cpu' })).toBe(2);
    expect(
      metricValue(metrics, 'dicomflow_scheduler_dispatched_total', { routing_key: 'flow.finished' }),
    ).toBe(1);
    expect(metricValue(metrics, 'dicomflow_scheduler_runs', { status: 'finished' })).toBe(1);
  });
});

import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { deadQueueName, ERROR_HEADER, suiteQueues } from '@dicomflow/broker';
import {
  jobFailedMessageId,
  jobFinishedMessageId,
  jobMessageId,
  jobStartedMessageId,
  type Job,
} from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { buildTestModelImage, COPY_MODEL, waitFor } from '@dicomflow/test-helpers';
import { execJobMessage } from './consumers/job-slot.js';
import { createConsumerMetrics } from './metrics.js';
import { StaticVolumes } from './staging/static-volumes.js';
import { NO_LIMITS } from './docker/create-options.js';
import { jobFixture, receiptInput, storeReceipt, type StoredReceipt } from './testing/fixtures.js';
import { newIsolation, startConsumer, TestBus, type InProcessConsumer } from './testing/consumer-harness.js';

const SLOW_MODEL = { name: 'slow-model', script: 'sleep 2\ncp -r /input/. /output/\n' };

describe('consumer: slots, priorities and refused settings', () => {
  let bus: TestBus;
  let consumer: InProcessConsumer;
  let receipt: StoredReceipt;
  let copyImage: string;
  let slowImage: string;

  beforeAll(async () => {
    copyImage = await buildTestModelImage(COPY_MODEL);
    slowImage = await buildTestModelImage(SLOW_MODEL);
    const isolation = newIsolation();
    bus = await TestBus.open(isolation);
    receipt = await storeReceipt(bus.storage, isolation.buckets.incoming, 1, 1);
    // One CPU slot, no GPU ids.
    consumer = await startConsumer(isolation, { CPUS: '1', GPUS: '' });
  });

  afterAll(async () => {
    await consumer.close();
    await bus.cleanup();
  });

  function job(image: string, extra: Partial<Parameters<typeof jobFixture>[0]> = {}): Job {
    return jobFixture({
      image,
      input: receiptInput(receipt, [receipt.instances[0]?.member ?? ''], []),
      runsBucket: bus.isolation.buckets.runs,
      ...extra,
    });
  }

  it('never takes a GPU job without GPU ids: it stays queued while CPU jobs run', async () => {
    const gpuJob = job(copyImage, { model: { gpu: true } });
    const cpuJob = job(copyImage);
    await bus.publishJob(gpuJob, 'job.gpu');
    await bus.publishJob(cpuJob, 'job.cpu');
    await waitFor(() => bus.outcome(cpuJob) !== undefined, 'the CPU job outcome', 60_000);

    expect(bus.outcome(cpuJob)?.routingKey).toBe('job.finished');
    expect(bus.of(gpuJob.runId)).toEqual([]);
    const gpuQueue = suiteQueues(bus.isolation.queuePrefix).jobsGpu.name;
    expect(await bus.messageCount(gpuQueue)).toBe(1);
    const waiting = await bus.channel.get(gpuQueue, { noAck: true });
    expect(waiting && waiting.properties.messageId).toBe(jobMessageId(gpuJob.runId, 0));
  });

  it('takes the highest-priority waiting job next (prefetch 1 per slot)', async () => {
    const blocker = job(slowImage);
    const low = job(copyImage, { priority: 0 });
    const high = job(copyImage, { priority: 5 });
    await bus.publishJob(blocker);
    await waitFor(
      () => bus.of(blocker.runId).some((r) => r.routingKey === 'job.started'),
      'the blocker running',
    );
    await bus.publishJob(low);
    await bus.publishJob(high);
    await waitFor(
      () => bus.outcome(low) !== undefined && bus.outcome(high) !== undefined,
      'both outcomes',
      60_000,
    );

    const starts = bus.received
      .filter((r) => r.routingKey === 'job.started')
      .map((r) => r.body.runId)
      .filter((runId) => [blocker.runId, low.runId, high.runId].includes(runId));
    expect(starts).toEqual([blocker.runId, high.runId, low.runId]);
  });

  it('does not run a job again that is delivered after its outcome went out: republishes the same outcome', async () => {
    const once = job(copyImage);
    await bus.publishJob(once);
    await waitFor(() => bus.outcome(once) !== undefined, 'the first outcome', 60_000);
    await bus.publishJob(once);
    await waitFor(
      () => bus.of(once.runId).filter((r) => r.routingKey === 'job.finished').length === 2,
      'the repeat',
    );

    const events = bus.of(once.runId);
    expect(events.map((e) => [e.routingKey, e.messageId])).toEqual([
      ['job.started', jobStartedMessageId(once.runId, 0)],
      ['job.finished', jobFinishedMessageId(once.runId, 0)],
      ['job.finished', jobFinishedMessageId(once.runId, 0)],
    ]);
    expect(events[2]?.body).toEqual(events[1]?.body);
  });

  it('dead-letters a job message whose docker_kwargs has a refused key, naming it (schema check)', async () => {
    const hostile = job(copyImage);
    const body = {
      ...hostile,
      model: { ...hostile.model, docker_kwargs: { image: copyImage, privileged: true } },
    };
    const queue = suiteQueues(bus.isolation.queuePrefix).jobsCpu.name;
    await bus.publishRawJob(body, 'job.cpu', jobMessageId(hostile.runId, 0));
    await waitFor(async () => (await bus.messageCount(deadQueueName(queue))) > 0, 'the dead letter');
    const dead = await bus.channel.get(deadQueueName(queue), { noAck: true });
    expect(dead && String(dead.properties.headers?.[ERROR_HEADER])).toContain('privileged');
    expect(await bus.containersLeft()).toEqual([]);
  });

  it('fails a job that reaches it with a refused docker_kwargs key: job.failed names the key', async () => {
    const hostile = job(copyImage);
    const refused: Job = {
      ...hostile,
      model: {
        ...hostile.model,
        docker_kwargs: { ...hostile.model.docker_kwargs, privileged: true } as never,
      },
    };
    const logger = createLogger({ service: 'consumer-test', level: 'silent' });
    const deps = {
      broker: bus.broker,
      storage: bus.storage,
      metrics: createConsumerMetrics(new Registry()),
      job: {
        docker: bus.docker,
        storage: bus.storage,
        staticVolumes: new StaticVolumes({
          docker: bus.docker,
          storage: bus.storage,
          bucket: bus.isolation.buckets.static,
          consumerId: bus.isolation.consumerId,
          logger,
        }),
        consumerId: bus.isolation.consumerId,
        worker: hostname(),
        maxOutputBytes: 1024 * 1024,
        maxOutputEntries: 1000,
        limits: NO_LIMITS,
        running: new Set<string>(),
        signal: new AbortController().signal,
      },
    };
    await execJobMessage(deps, { kind: 'cpu', index: 0 }, refused, { logger, attempt: 1 });
    await waitFor(() => bus.outcome(refused) !== undefined, 'job.failed');

    expect(bus.outcome(refused)).toMatchObject({
      routingKey: 'job.failed',
      messageId: jobFailedMessageId(refused.runId, 0),
      body: {
        reason: 'error',
        message: 'docker_kwargs.privileged is refused: containers never run privileged',
      },
    });
    expect(await bus.containersLeft()).toEqual([]);
  });
});

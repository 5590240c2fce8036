import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobFinishedMessageId, jobStartedMessageId } from '@dicomflow/messages';
import { buildTestModelImage, ensureTestBaseImage, waitFor } from '@dicomflow/test-helpers';
import { CONSUMER_LABEL, containerName } from './docker/create-options.js';
import { filesOf, jobFixture, receiptInput, storeReceipt } from './testing/fixtures.js';
import {
  consumerEnvironment,
  newIsolation,
  startConsumer as startInProcess,
  TestBus,
  type Isolation,
} from './testing/consumer-harness.js';

// The built service, as production runs it (`npx tsc --build` first).
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SLOW_COPY = { name: 'slow-copy-model', script: 'echo "working"\nsleep 4\ncp -r /input/. /output/\n' };

describe('consumer killed with SIGKILL mid-job', () => {
  let work: string;
  let isolation: Isolation;
  let bus: TestBus;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'consumer-crash-'));
    isolation = newIsolation();
    bus = await TestBus.open(isolation);
  });

  afterAll(async () => {
    for (const child of children) await kill(child);
    await bus.cleanup();
    for (const info of await bus.docker.listContainers({
      all: true,
      filters: { label: [`${CONSUMER_LABEL}=${isolation.consumerId}-b`] },
    }))
      await bus.docker.getContainer(info.Id).remove({ force: true });
    await rm(work, { recursive: true, force: true });
  });

  function startConsumer(consumerId: string): ChildProcess {
    const child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        ...consumerEnvironment(isolation),
        CONSUMER_ID: consumerId,
        CONF_DIR: work,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.add(child);
    return child;
  }

  async function kill(child: ChildProcess): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    children.delete(child);
  }

  async function stop(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => {
        resolve({ code, signal });
      }),
    );
    child.kill('SIGTERM');
    const result = await exited;
    children.delete(child);
    return result;
  }

  it('runs the redelivered job again, completes it once and leaves no container', async () => {
    const image = await buildTestModelImage(SLOW_COPY);
    const receipt = await storeReceipt(bus.storage, isolation.buckets.incoming, 1, 2);
    const job = jobFixture({
      image,
      input: receiptInput(
        receipt,
        receipt.instances.map((i) => i.member),
        [],
      ),
      runsBucket: isolation.buckets.runs,
    });
    const first = startConsumer(isolation.consumerId);
    await bus.publishJob(job);
    await waitFor(
      () => bus.of(job.runId).some((r) => r.routingKey === 'job.started'),
      'the first start',
      60_000,
    );
    await kill(first);
    // The first attempt's container outlives the killed consumer for now.
    const name = containerName(job.runId, job.step);
    expect((await bus.docker.getContainer(name).inspect()).Name).toBe(`/${name}`);

    // Another consumer (its own id) takes the redelivered job: it removes the old container first.
    const second = startConsumer(`${isolation.consumerId}-b`);
    await waitFor(() => bus.outcome(job) !== undefined, 'the outcome', 60_000);
    expect(await stop(second)).toEqual({ code: 0, signal: null });

    const events = bus.of(job.runId);
    expect(events.filter((e) => e.routingKey !== 'job.started').map((e) => e.messageId)).toEqual([
      jobFinishedMessageId(job.runId, 0),
    ]);
    // job.started went out once per attempt, under its one message id.
    expect(new Set(events.filter((e) => e.routingKey === 'job.started').map((e) => e.messageId))).toEqual(
      new Set([jobStartedMessageId(job.runId, 0)]),
    );
    const output = await filesOf(await bus.storage.getStream(job.output.bucket, job.output.key));
    expect([...output.keys()].sort()).toEqual(receipt.instances.map((i) => `${i.sopUid}.dcm`).sort());
    const left = await bus.docker.listContainers({ all: true, filters: { name: [name] } });
    expect(left).toEqual([]);
  });

  it('on SIGTERM-style close stops its running container; the job runs again on the next consumer', async () => {
    const image = await buildTestModelImage(SLOW_COPY);
    const receipt = await storeReceipt(bus.storage, isolation.buckets.incoming, 1, 1);
    const job = jobFixture({
      image,
      input: receiptInput(
        receipt,
        receipt.instances.map((i) => i.member),
        [],
      ),
      runsBucket: isolation.buckets.runs,
    });
    const first = await startInProcess(isolation);
    await bus.publishJob(job);
    await waitFor(() => bus.of(job.runId).some((r) => r.routingKey === 'job.started'), 'the start', 60_000);
    await first.close();
    expect(await bus.containersLeft()).toEqual([]);
    expect(bus.outcome(job)).toBeUndefined();

    const second = await startInProcess(isolation);
    try {
      await waitFor(() => bus.outcome(job) !== undefined, 'the outcome', 60_000);
    } finally {
      await second.close();
    }
    expect(
      bus
        .of(job.runId)
        .filter((e) => e.routingKey !== 'job.started')
        .map((e) => e.messageId),
    ).toEqual([jobFinishedMessageId(job.runId, 0)]);
  });

  it('removes containers labelled with its own id when it starts (left by a killed earlier life)', async () => {
    const base = await ensureTestBaseImage();
    const leftover = await bus.docker.createContainer({
      Image: base,
      Cmd: ['sleep', '600'],
      Labels: { [CONSUMER_LABEL]: isolation.consumerId, 'dicomflow.role': 'model' },
      HostConfig: { NetworkMode: 'none' },
    });
    await leftover.start();
    const other = await bus.docker.createContainer({
      Image: base,
      Cmd: ['sleep', '600'],
      Labels: { [CONSUMER_LABEL]: `${isolation.consumerId}-b` },
      HostConfig: { NetworkMode: 'none' },
    });
    const consumer = startConsumer(isolation.consumerId);
    await waitFor(async () => (await bus.containers()).length === 0, 'the leftover removed', 30_000);
    expect(await stop(consumer)).toEqual({ code: 0, signal: null });
    // A container of another consumer id is not touched.
    expect((await other.inspect()).Id).toBe(other.id);
  });
});

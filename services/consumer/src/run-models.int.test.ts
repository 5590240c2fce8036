import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobFailedMessageId, jobFinishedMessageId, jobStartedMessageId, type Job } from '@dicomflow/messages';
import { buildTestModelImage, COPY_MODEL, waitFor } from '@dicomflow/test-helpers';
import { filesOf, jobFixture, receiptInput, storeReceipt, type StoredReceipt } from './testing/fixtures.js';
import { newIsolation, startConsumer, TestBus, type InProcessConsumer } from './testing/consumer-harness.js';

const FAIL_MODEL = {
  name: 'fail-model',
  script: 'echo "reading input"\necho "model error: weights missing" >&2\nexit 1\n',
};
const HANG_MODEL = { name: 'hang-model', script: 'echo "started"\nsleep 600\n' };
const EMPTY_MODEL = { name: 'empty-model', script: 'echo "nothing to write"\n' };
const SYMLINK_MODEL = {
  name: 'symlink-model',
  script: 'echo data > /output/real.txt\nln -s /etc/passwd /output/link\n',
};
const PROBE_MODEL = {
  name: 'probe-model',
  script: 'set -e\nip addr > /output/net.txt\nenv | grep ^DICOMFLOW_ | sort > /output/env.txt\n',
};

describe('consumer: running models in real containers', () => {
  let bus: TestBus;
  let consumer: InProcessConsumer;
  let receipt: StoredReceipt;
  const images: Record<string, string> = {};

  beforeAll(async () => {
    for (const model of [COPY_MODEL, FAIL_MODEL, HANG_MODEL, EMPTY_MODEL, SYMLINK_MODEL, PROBE_MODEL])
      images[model.name] = await buildTestModelImage(model);
    const isolation = newIsolation();
    bus = await TestBus.open(isolation);
    consumer = await startConsumer(isolation, { CPUS: '2' });
    receipt = await storeReceipt(bus.storage, isolation.buckets.incoming, 2, 3);
  });

  afterAll(async () => {
    await consumer.close();
    await bus.cleanup();
  });

  function job(image: string, extra: Partial<Parameters<typeof jobFixture>[0]> = {}): Job {
    const members = receipt.instances.map((instance) => instance.member);
    return jobFixture({
      image: images[image] ?? image,
      input: receiptInput(receipt, members, ['SeriesInstanceUID']),
      runsBucket: bus.isolation.buckets.runs,
      ...extra,
    });
  }

  async function outcomeOf(j: Job): Promise<NonNullable<ReturnType<TestBus['outcome']>>> {
    await waitFor(() => bus.outcome(j) !== undefined, `the outcome of ${j.runId}`, 60_000);
    const outcome = bus.outcome(j);
    if (!outcome) throw new Error('no outcome');
    return outcome;
  }

  async function storedOutput(j: Job): Promise<Map<string, Buffer>> {
    return filesOf(await bus.storage.getStream(j.output.bucket, j.output.key));
  }

  it('copies the run members, laid out by tar_subdir, and stores them as the output', async () => {
    const selected = receipt.instances.filter((_, i) => i !== 1);
    const j = jobFixture({
      image: images['copy-model'] ?? '',
      input: receiptInput(
        receipt,
        selected.map((instance) => instance.member),
        ['SeriesInstanceUID'],
      ),
      runsBucket: bus.isolation.buckets.runs,
    });
    await bus.publishJob(j);
    const outcome = await outcomeOf(j);

    expect(outcome).toMatchObject({
      routingKey: 'job.finished',
      messageId: jobFinishedMessageId(j.runId, 0),
      correlationId: j.runId,
      body: { runId: j.runId, step: 0, output: j.output, exitCode: 0 },
    });
    const files = await storedOutput(j);
    expect(new Map([...files].map(([name, body]) => [name, body.toString()]))).toEqual(
      new Map(
        selected.map((instance) => [
          `${instance.seriesUid}/${instance.sopUid}.dcm`,
          instance.body.toString(),
        ]),
      ),
    );
    const started = bus.of(j.runId).filter((r) => r.routingKey === 'job.started');
    expect(started).toMatchObject([
      {
        messageId: jobStartedMessageId(j.runId, 0),
        correlationId: j.runId,
        body: { image: j.model.docker_kwargs.image },
      },
    ]);
    // Provenance: the id the engine gives the image (a local build has no registry digest).
    const inspected = await new Docker().getImage(j.model.docker_kwargs.image).inspect();
    expect(started[0]?.body).toMatchObject({
      imageId: inspected.Id,
      repoDigests: inspected.RepoDigests,
    });
    expect(inspected.Id).toMatch(/^sha256:[0-9a-f]{64}$/);
    // Observed once the outcome is confirmed, which may be just after the test saw it.
    let metrics = '';
    await waitFor(async () => {
      metrics = await (await fetch(`http://127.0.0.1:${consumer.service.httpPort()}/metrics`)).text();
      return metrics.includes('dicomflow_consumer_container_seconds_count{');
    }, 'the job times observed');
    expect(metrics).toMatch(
      /^dicomflow_consumer_queue_wait_seconds_count\{[^}]*flow="consumer-test",queue="jobs.cpu",priority="0"[^}]*\} [1-9]/m,
    );
    expect(metrics).toMatch(
      new RegExp(
        `^dicomflow_consumer_container_seconds_count\\{[^}]*flow="consumer-test",image="${j.model.docker_kwargs.image}"[^}]*\\} 1$`,
        'm',
      ),
    );
    expect(await bus.containersLeft()).toEqual([]);
  });

  it('runs a chain: the second model gets the first output tar as its input', async () => {
    const first = job('copy-model', { stepCount: 2 });
    const second = jobFixture({
      image: images['copy-model'] ?? '',
      runId: first.runId,
      step: 1,
      stepCount: 2,
      input: { kind: 'step', step: 0, bucket: first.output.bucket, key: first.output.key },
      runsBucket: bus.isolation.buckets.runs,
      model: { input_dir: '/data/in/', output_dir: '/data/out/' },
    });
    await bus.publishJob(first);
    expect((await outcomeOf(first)).routingKey).toBe('job.finished');
    await bus.publishJob(second);
    expect((await outcomeOf(second)).routingKey).toBe('job.finished');

    const expected = new Map(
      receipt.instances.map((i) => [`${i.seriesUid}/${i.sopUid}.dcm`, i.body.toString()]),
    );
    const output = await storedOutput(second);
    expect(new Map([...output].map(([name, body]) => [name, body.toString()]))).toEqual(expected);
    expect(second.output.key).toBe(`${first.runId}/1/output.tar`);
  });

  it('fails a model that exits 1 with its exit code; its log is stored beside the output, not in the message', async () => {
    const j = job('fail-model');
    await bus.publishJob(j);
    const outcome = await outcomeOf(j);
    expect(outcome).toMatchObject({ routingKey: 'job.failed', messageId: jobFailedMessageId(j.runId, 0) });
    expect(outcome.body).toMatchObject({ reason: 'exit-code', exitCode: 1 });
    if (outcome.routingKey !== 'job.failed') throw new Error('expected job.failed');
    expect(outcome.body.message).toContain('exited with code 1');
    expect(outcome.body.message).not.toContain('model error: weights missing');
    expect(outcome.body.log).toEqual({ bucket: j.output.bucket, key: `${j.runId}/0/log.txt` });
    // stdout and stderr are separate pipes: their relative order in the log is not guaranteed.
    expect((await bus.logOf(outcome)).split('\n').sort()).toEqual([
      '',
      'model error: weights missing',
      'reading input',
    ]);
    expect(await bus.storage.stat(j.output.bucket, j.output.key)).toBeUndefined();
    expect(await bus.containersLeft()).toEqual([]);
  });

  it('stops a model that runs past its timeout: reason timeout', async () => {
    const j = job('hang-model', { model: { timeout: 2 } });
    await bus.publishJob(j);
    const outcome = await outcomeOf(j);
    expect(outcome).toMatchObject({ routingKey: 'job.failed', body: { reason: 'timeout' } });
    expect(await bus.logOf(outcome)).toBe('started\n');
    expect(await bus.containersLeft()).toEqual([]);
  });

  it('stores an empty output as an empty tar', async () => {
    const j = job('empty-model');
    await bus.publishJob(j);
    const outcome = await outcomeOf(j);
    expect(outcome.routingKey).toBe('job.finished');
    expect(await bus.logOf(outcome)).toBe('nothing to write\n');
    expect((await storedOutput(j)).size).toBe(0);
  });

  it('refuses an output holding a symbolic link: reason output, nothing stored', async () => {
    const j = job('symlink-model');
    await bus.publishJob(j);
    const outcome = await outcomeOf(j);
    expect(outcome).toMatchObject({ routingKey: 'job.failed', body: { reason: 'output', exitCode: 0 } });
    if (outcome.routingKey !== 'job.failed') throw new Error('expected job.failed');
    expect(outcome.body.message).toMatch(/link.*symlink/);
    expect(await bus.storage.stat(j.output.bucket, j.output.key)).toBeUndefined();
  });

  it('gives a container no network but loopback by default, and the run environment', async () => {
    const j = job('probe-model');
    await bus.publishJob(j);
    expect((await outcomeOf(j)).routingKey).toBe('job.finished');
    const files = await storedOutput(j);
    const interfaces = [...(files.get('net.txt')?.toString() ?? '').matchAll(/^\d+: ([^:@]+)/gm)].map(
      (m) => m[1],
    );
    expect(interfaces).toEqual(['lo']);
    expect(files.get('env.txt')?.toString().split('\n').filter(Boolean)).toEqual([
      'DICOMFLOW_FLOW_NAME=consumer-test',
      'DICOMFLOW_FLOW_VERSION=1.0',
      'DICOMFLOW_INPUT_DIR=/input/',
      'DICOMFLOW_OUTPUT_DIR=/output/',
      `DICOMFLOW_RUN_ID=${j.runId}`,
      'DICOMFLOW_STEP=0',
      'DICOMFLOW_STEP_COUNT=1',
    ]);
  });

  it('fails a job whose image is neither present nor pullable: reason image', async () => {
    const j = job('dicomflow-test/no-such-model:1', { model: { pull_before_exec: true } });
    await bus.publishJob(j);
    expect(await outcomeOf(j)).toMatchObject({ routingKey: 'job.failed', body: { reason: 'image' } });
  });
});

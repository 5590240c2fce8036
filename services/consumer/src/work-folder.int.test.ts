import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobFinishedMessageId, type Job } from '@dicomflow/messages';
import { buildTestModelImage, COPY_MODEL, waitFor } from '@dicomflow/test-helpers';
import { staticVolumeNames } from './staging/static-volumes.js';
import {
  filesOf,
  jobFixture,
  receiptInput,
  sha256Hex,
  storeReceipt,
  tarOf,
  type StoredReceipt,
} from './testing/fixtures.js';
import {
  consumerEnvironment,
  newIsolation,
  onceEmpty,
  startConsumer,
  TestBus,
  type InProcessConsumer,
} from './testing/consumer-harness.js';

// The built service, as production runs it (`npx tsc --build` first).
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const FAIL_MODEL = { name: 'fail-model', script: 'echo "model error: weights missing" >&2\nexit 1\n' };
const EMPTY_MODEL = { name: 'empty-model', script: 'echo "nothing to write"\n' };
const SYMLINK_MODEL = {
  name: 'symlink-model',
  script: 'echo data > /output/real.txt\nln -s /etc/passwd /output/link\n',
};
const SLOW_COPY = { name: 'slow-copy-model', script: 'echo "working"\nsleep 4\ncp -r /input/. /output/\n' };
// Writes as a user that is neither the consumer nor root, in a folder of its own (mode 0755).
const OTHER_USER_MODEL = {
  name: 'other-user-model',
  script: 'set -e\nid -u > /output/uid.txt\nmkdir /output/sub\ncp -r /input/. /output/sub/\n',
};
// Writes more files than MAX_OUTPUT_ENTRIES allows (empty ones: no bytes), then would idle for minutes.
const MANY_FILES_MODEL = {
  name: 'many-files-model',
  script: 'i=0\nwhile [ $i -lt 300 ]; do : > /output/f$i; i=$((i+1)); done\necho "written"\nsleep 600\n',
};
// Writes more bytes than MAX_OUTPUT_BYTES allows, then would idle for minutes.
const BIG_OUTPUT_MODEL = {
  name: 'big-output-model',
  script: 'dd if=/dev/zero of=/output/big bs=1048576 count=12 2>/dev/null\necho "written"\nsleep 600\n',
};
const WEIGHTS_MODEL = {
  name: 'weights-and-input-model',
  script: 'set -e\ncat /weights/model.bin > /output/used.txt\ncp -r /input/. /output/\n',
};

describe('consumer: job folders in a work folder shared with the Docker engine (CONSUMER_WORK_DIR)', () => {
  let work: string;
  let bus: TestBus;
  let consumer: InProcessConsumer;
  let receipt: StoredReceipt;
  let sha256 = '';
  const images: Record<string, string> = {};
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    for (const model of [
      COPY_MODEL,
      FAIL_MODEL,
      EMPTY_MODEL,
      SYMLINK_MODEL,
      SLOW_COPY,
      OTHER_USER_MODEL,
      WEIGHTS_MODEL,
      MANY_FILES_MODEL,
      BIG_OUTPUT_MODEL,
    ])
      images[model.name] = await buildTestModelImage(model);
    work = await mkdtemp(join(tmpdir(), 'consumer-work-'));
    const isolation = newIsolation();
    bus = await TestBus.open(isolation);
    consumer = await startConsumer(isolation, {
      CPUS: '2',
      CONSUMER_WORK_DIR: work,
      MAX_OUTPUT_ENTRIES: '100',
      MAX_OUTPUT_BYTES: String(8 * 1024 * 1024),
    });
    receipt = await storeReceipt(bus.storage, isolation.buckets.incoming, 2, 3);
  });

  afterAll(async () => {
    for (const child of children) await kill(child);
    await consumer.close();
    await bus.cleanup();
    if (sha256) {
      const names = staticVolumeNames(sha256);
      for (const name of [names.ready, names.volume])
        await bus.docker
          .getVolume(name)
          .remove()
          .catch(() => undefined);
    }
    await rm(work, { recursive: true, force: true });
  });

  /** The job folders of the test's consumer that exist right now. */
  async function jobFolders(): Promise<string[]> {
    try {
      return await readdir(join(work, bus.isolation.consumerId));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  function job(image: string, extra: Partial<Parameters<typeof jobFixture>[0]> = {}): Job {
    return jobFixture({
      image: images[image] ?? image,
      input: receiptInput(
        receipt,
        receipt.instances.map((instance) => instance.member),
        ['SeriesInstanceUID'],
      ),
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

  async function storedOutput(j: Job): Promise<Map<string, string>> {
    const files = await filesOf(await bus.storage.getStream(j.output.bucket, j.output.key));
    return new Map([...files].map(([name, body]) => [name, body.toString()]));
  }

  const laidOut = (prefix = ''): Map<string, string> =>
    new Map(receipt.instances.map((i) => [`${prefix}${i.seriesUid}/${i.sopUid}.dcm`, i.body.toString()]));

  it('copies the run members, laid out by tar_subdir, through bind-mounted folders, then removes them', async () => {
    const selected = receipt.instances.filter((_, i) => i !== 1);
    const j = job('copy-model', {
      input: receiptInput(
        receipt,
        selected.map((instance) => instance.member),
        ['SeriesInstanceUID'],
      ),
    });
    await bus.publishJob(j);
    expect(await outcomeOf(j)).toMatchObject({
      routingKey: 'job.finished',
      messageId: jobFinishedMessageId(j.runId, 0),
      body: { runId: j.runId, step: 0, exitCode: 0 },
    });
    expect(await storedOutput(j)).toEqual(
      new Map(selected.map((i) => [`${i.seriesUid}/${i.sopUid}.dcm`, i.body.toString()])),
    );
    expect(await onceEmpty(jobFolders)).toEqual([]);
    expect(await bus.containersLeft()).toEqual([]);
  });

  it('runs a chain: the second model gets the first output as its input folder', async () => {
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
    expect(await storedOutput(second)).toEqual(laidOut());
    expect(await onceEmpty(jobFolders)).toEqual([]);
  });

  it('lets a model running as another user read the input and write the output; removes what it wrote', async () => {
    const j = job('other-user-model', { dockerKwargs: { user: '4321:4321' } });
    await bus.publishJob(j);
    expect((await outcomeOf(j)).routingKey).toBe('job.finished');
    const output = await storedOutput(j);
    expect(output.get('uid.txt')).toBe('4321\n');
    output.delete('uid.txt');
    expect(output).toEqual(laidOut('sub/'));
    expect(await onceEmpty(jobFolders)).toEqual([]);
  });

  it('stores an empty output as an empty tar', async () => {
    const j = job('empty-model');
    await bus.publishJob(j);
    const outcome = await outcomeOf(j);
    expect(outcome.routingKey).toBe('job.finished');
    expect(await bus.logOf(outcome)).toBe('nothing to write\n');
    expect((await storedOutput(j)).size).toBe(0);
    expect(await onceEmpty(jobFolders)).toEqual([]);
  });

  it('refuses an output holding a symbolic link, naming it: reason output, nothing stored', async () => {
    const j = job('symlink-model');
    await bus.publishJob(j);
    const outcome = await outcomeOf(j);
    expect(outcome).toMatchObject({ routingKey: 'job.failed', body: { reason: 'output', exitCode: 0 } });
    if (outcome.routingKey !== 'job.failed') throw new Error('expected job.failed');
    expect(outcome.body.message).toBe('output entry "link" is a symlink, not a regular file or folder');
    expect(await bus.storage.stat(j.output.bucket, j.output.key)).toBeUndefined();
    expect(await onceEmpty(jobFolders)).toEqual([]);
  });

  it('fails a model that exits 1 with its exit code and log lines, and removes its folder', async () => {
    const j = job('fail-model');
    await bus.publishJob(j);
    const outcome = await outcomeOf(j);
    expect(outcome).toMatchObject({ routingKey: 'job.failed', body: { reason: 'exit-code', exitCode: 1 } });
    if (outcome.routingKey !== 'job.failed') throw new Error('expected job.failed');
    expect(outcome.body.message).not.toContain('model error: weights missing');
    expect(await bus.logOf(outcome)).toBe('model error: weights missing\n');
    expect(await bus.storage.stat(j.output.bucket, j.output.key)).toBeUndefined();
    expect(await onceEmpty(jobFolders)).toEqual([]);
    expect(await bus.containersLeft()).toEqual([]);
  });

  it.each([
    ['many-files-model', /more than 100 files and folders \(MAX_OUTPUT_ENTRIES\)/],
    ['big-output-model', /larger than the limit of 8388608 bytes/],
  ])('stops %s while it runs, once its output is past the bound: reason output', async (image, reason) => {
    // The model would sleep for 10 minutes after writing; its timeout is 5: only the watch can end it first.
    const j = job(image, { model: { timeout: 300 } });
    await bus.publishJob(j);
    const outcome = await outcomeOf(j);
    if (outcome.routingKey !== 'job.failed')
      throw new Error(`expected job.failed, got ${outcome.routingKey}`);
    expect(outcome.body.reason).toBe('output');
    expect(outcome.body.message).toMatch(reason);
    expect(outcome.body.message).toContain('the model was stopped while it ran');
    expect(await bus.logOf(outcome)).toBe('written\n');
    expect(await bus.storage.stat(j.output.bucket, j.output.key)).toBeUndefined();
    expect(await onceEmpty(jobFolders)).toEqual([]);
    expect(await bus.containersLeft()).toEqual([]);
  });

  it('mounts static content alongside the job folders', async () => {
    const weights = `weights ${Date.now()} ${Math.random()}\n`;
    const tar = await tarOf([{ name: 'model.bin', body: Buffer.from(weights) }]);
    sha256 = sha256Hex(tar);
    await bus.storage.putStream(
      bus.isolation.buckets.static,
      'work-weights.tar',
      Readable.from([tar]),
      tar.length,
      { sha256 },
    );
    const j = job('weights-and-input-model', { model: { static_mounts: ['work-weights:/weights'] } });
    await bus.publishJob(j);
    expect((await outcomeOf(j)).routingKey).toBe('job.finished');
    const output = await storedOutput(j);
    expect(output.get('used.txt')).toBe(weights);
    output.delete('used.txt');
    expect(output).toEqual(laidOut());
    expect(await onceEmpty(jobFolders)).toEqual([]);
  });

  function spawnConsumer(): ChildProcess {
    const child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        ...consumerEnvironment(bus.isolation),
        CONSUMER_ID: `${bus.isolation.consumerId}-k`,
        CONSUMER_WORK_DIR: work,
        CONF_DIR: work,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.add(child);
    return child;
  }

  async function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    }
    children.delete(child);
  }

  it('kill -9 mid-job: the restarted consumer removes the job folder left behind and runs the job again', async () => {
    // The in-process consumer must not take this job: a consumer of its own id runs it.
    await consumer.close();
    const folderOf = async (): Promise<string[]> => {
      try {
        return await readdir(join(work, `${bus.isolation.consumerId}-k`));
      } catch {
        return [];
      }
    };
    const j = job('slow-copy-model');
    const first = spawnConsumer();
    await bus.publishJob(j);
    await waitFor(() => bus.of(j.runId).some((r) => r.routingKey === 'job.started'), 'the start', 60_000);
    await kill(first);
    const left = await folderOf();
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(new RegExp(`^${j.runId}-0-`));

    const second = spawnConsumer();
    await waitFor(() => bus.outcome(j) !== undefined, 'the outcome', 60_000);
    await kill(second, 'SIGTERM');
    expect(bus.outcome(j)?.routingKey).toBe('job.finished');
    expect(await storedOutput(j)).toEqual(laidOut());
    expect(await folderOf()).toEqual([]);
    expect(
      await bus.docker.listContainers({
        all: true,
        filters: { label: [`dicomflow.consumer=${bus.isolation.consumerId}-k`] },
      }),
    ).toEqual([]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job, JobFailed } from '@dicomflow/messages';
import { buildTestModelImage, COPY_MODEL, runChecked, waitFor } from '@dicomflow/test-helpers';
import { filesOf, jobFixture, receiptInput, storeReceipt, type StoredReceipt } from './testing/fixtures.js';
import {
  newIsolation,
  startConsumer,
  TestBus,
  type InProcessConsumer,
  type Received,
} from './testing/consumer-harness.js';

// Models that try what a model must not be able to do. Each fails inside its container on its own, and
// says so in its log, which is how the test tells a refusal from a script error.
const CHOWN_MODEL = {
  name: 'escalate-chown',
  script: 'echo data > /output/mine\nchown 1:1 /output/mine || { echo "chown refused"; exit 11; }\n',
};
const WRITE_ROOT_MODEL = {
  name: 'escalate-write-root',
  script:
    'echo scratch > /tmp/scratch || exit 20\necho out > /output/out || exit 21\n' +
    'echo evil > /evil || { echo "root file system refused"; exit 12; }\n',
};
const RAW_SOCKET_MODEL = {
  name: 'escalate-raw-socket',
  script: 'arping -c 1 -I lo 127.0.0.1 || { echo "raw socket refused"; exit 13; }\n',
};
const FORK_BOMB_MODEL = {
  name: 'escalate-fork-bomb',
  script: 'for i in $(seq 500); do sleep 600 & done\necho "every fork succeeded"\n',
};
const MEMORY_MODEL = {
  name: 'escalate-memory',
  // exec: the allocating process is the container's main process, as a model's usually is.
  script: 'echo "allocating"\nexec awk \'BEGIN { s = "x"; while (1) s = s s }\'\n',
};
// Fills its layer past MAX_OUTPUT_BYTES, then would idle for minutes.
const FILL_DISK_MODEL = {
  name: 'escalate-fill-disk',
  script: 'dd if=/dev/zero of=/output/big bs=1048576 count=12 2>/dev/null\necho "written"\nsleep 600\n',
};
const SETUID_MODEL = {
  name: 'escalate-whoami',
  script: 'id -u > /output/uid\nid -g > /output/gid\n',
};

describe('consumer: hardened model containers', () => {
  let bus: TestBus;
  let consumer: InProcessConsumer;
  let receipt: StoredReceipt;
  const images: Record<string, string> = {};

  beforeAll(async () => {
    for (const model of [
      COPY_MODEL,
      CHOWN_MODEL,
      WRITE_ROOT_MODEL,
      RAW_SOCKET_MODEL,
      FORK_BOMB_MODEL,
      MEMORY_MODEL,
      SETUID_MODEL,
      FILL_DISK_MODEL,
    ])
      images[model.name] = await buildTestModelImage(model);
    const isolation = newIsolation();
    bus = await TestBus.open(isolation);
    consumer = await startConsumer(isolation, {
      CPUS: '2',
      CONSUMER_PIDS_LIMIT: '64',
      CONSUMER_MEMORY_LIMIT: String(64 * 1024 ** 2),
      CONSUMER_MAX_MEMORY_LIMIT: String(1024 ** 3),
      CONSUMER_DEFAULT_USER: '65534:65534',
      MAX_OUTPUT_BYTES: String(8 * 1024 * 1024),
    });
    receipt = await storeReceipt(bus.storage, isolation.buckets.incoming, 1, 2);
  });

  afterAll(async () => {
    await consumer.close();
    await bus.cleanup();
  });

  function job(image: string, dockerKwargs: Record<string, unknown> = {}): Job {
    return jobFixture({
      image: images[image] ?? image,
      input: receiptInput(
        receipt,
        receipt.instances.map((instance) => instance.member),
        [],
      ),
      runsBucket: bus.isolation.buckets.runs,
      dockerKwargs,
      model: { timeout: 120 },
    });
  }

  async function outcomeOf(j: Job): Promise<Received> {
    await bus.publishJob(j);
    await waitFor(() => bus.outcome(j) !== undefined, `the outcome of ${j.runId}`, 120_000);
    const outcome = bus.outcome(j);
    if (!outcome) throw new Error('no outcome');
    return outcome;
  }

  /** The job.failed of a job, with the model log it points to read in as `logExcerpt`. */
  async function failureOf(j: Job): Promise<JobFailed> {
    const outcome = await outcomeOf(j);
    if (outcome.routingKey !== 'job.failed')
      throw new Error(`expected job.failed, got ${outcome.routingKey}`);
    return { ...outcome.body, logExcerpt: await bus.logOf(outcome) };
  }

  it('chown fails without capabilities (run fails: exit code, the refusal in the log)', async () => {
    const failed = await failureOf(job('escalate-chown', { user: 'root' }));
    expect(failed).toMatchObject({ reason: 'exit-code', exitCode: 11 });
    expect(failed.logExcerpt).toContain('Operation not permitted');
  });

  it('read_only: writing to / fails, /tmp and the output stay writable', async () => {
    // As root: in the archive mode (no CONSUMER_WORK_DIR) a read-only container's output folder is a new
    // volume owned by root, unless the image has that folder (then it keeps its owner and mode).
    const failed = await failureOf(job('escalate-write-root', { read_only: true, user: 'root' }));
    expect(failed).toMatchObject({ reason: 'exit-code', exitCode: 12 });
    expect(failed.logExcerpt).toContain('Read-only file system');
  });

  it('a raw socket is refused (no CAP_NET_RAW)', async () => {
    const failed = await failureOf(job('escalate-raw-socket', { user: 'root' }));
    expect(failed).toMatchObject({ reason: 'exit-code', exitCode: 13 });
    expect(failed.logExcerpt).toContain('Operation not permitted');
  });

  it('a fork bomb stops at the pids limit inside its container', async () => {
    const failed = await failureOf(job('escalate-fork-bomb'));
    // busybox sh exits at once (code 2) when it cannot fork; the container ends with it.
    expect(failed.reason).toBe('exit-code');
    expect(failed.exitCode).not.toBe(0);
    expect(failed.logExcerpt).toContain("can't fork");
    expect(failed.logExcerpt).not.toContain('every fork succeeded');
  });

  it('allocating past the memory limit ends the run with reason out-of-memory', async () => {
    const failed = await failureOf(job('escalate-memory'));
    expect(failed).toMatchObject({ reason: 'out-of-memory', exitCode: 137 });
    expect(failed.message).toMatch(/more memory than its limit of 64 MiB/);
    expect(failed.logExcerpt).toContain('allocating');
  });

  it('writing past MAX_OUTPUT_BYTES is stopped while the model runs (archive mode: its layer is measured)', async () => {
    // It would sleep for 10 minutes after writing, and its timeout is 2: only the watch ends it sooner.
    const failed = await failureOf(job('escalate-fill-disk'));
    expect(failed.reason).toBe('output');
    expect(failed.message).toMatch(
      /larger than the limit of 8388608 bytes; the model was stopped while it ran/,
    );
    expect(failed.logExcerpt).toBe('written\n');
  });

  it('a flow asking for more memory than the maximum fails before its container is made', async () => {
    const failed = await failureOf(job('copy-model', { mem_limit: '2g' }));
    expect(failed.reason).toBe('error');
    expect(failed.message).toContain('CONSUMER_MAX_MEMORY_LIMIT');
  });

  it('runs a root image as CONSUMER_DEFAULT_USER, and then the consumer still runs models', async () => {
    const j = job('escalate-whoami');
    const outcome = await outcomeOf(j);
    expect(outcome.routingKey).toBe('job.finished');
    const output = await filesOf(await bus.storage.getStream(j.output.bucket, j.output.key));
    expect(output.get('uid')?.toString().trim()).toBe('65534');
    expect(output.get('gid')?.toString().trim()).toBe('65534');
    // No container of these jobs is left, and a plain model still runs to its end on this consumer.
    const containersLeft = async (): Promise<string> =>
      (
        await runChecked('docker', [
          'ps',
          '-aq',
          '--filter',
          `label=dicomflow.consumer=${bus.isolation.consumerId}`,
        ])
      ).stdout.trim();
    await waitFor(async () => (await containersLeft()) === '', 'every model container removed');
    const copy = job('copy-model', { user: 'root' });
    expect((await outcomeOf(copy)).routingKey).toBe('job.finished');
  });
});

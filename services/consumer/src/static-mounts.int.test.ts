import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '@dicomflow/messages';
import { buildTestModelImage, waitFor } from '@dicomflow/test-helpers';
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
import { newIsolation, startConsumer, TestBus, type InProcessConsumer } from './testing/consumer-harness.js';

const WEIGHTS_MODEL = {
  name: 'weights-model',
  script: [
    'set -e',
    'cat /weights/model.bin > /output/used.txt',
    'if touch /weights/new 2>/dev/null; then echo writable; else echo read-only; fi > /output/mount.txt',
    '',
  ].join('\n'),
};

describe('consumer: static mounts', () => {
  let bus: TestBus;
  let consumer: InProcessConsumer;
  let receipt: StoredReceipt;
  let image: string;
  let sha256: string;
  const weights = `weights ${Date.now()}\n`;

  beforeAll(async () => {
    image = await buildTestModelImage(WEIGHTS_MODEL);
    const isolation = newIsolation();
    bus = await TestBus.open(isolation);
    receipt = await storeReceipt(bus.storage, isolation.buckets.incoming, 1, 1);
    // What static-storage stores: <name>.tar with the sha256 of its bytes as metadata.
    const tar = await tarOf([{ name: 'model.bin', body: Buffer.from(weights) }]);
    sha256 = sha256Hex(tar);
    await bus.storage.putStream(
      isolation.buckets.static,
      'chest-weights.tar',
      Readable.from([tar]),
      tar.length,
      { sha256 },
    );
    consumer = await startConsumer(isolation, { CPUS: '2' });
  });

  afterAll(async () => {
    await consumer.close();
    await bus.cleanup();
    const names = staticVolumeNames(sha256);
    for (const name of [names.ready, names.volume])
      await bus.docker
        .getVolume(name)
        .remove()
        .catch(() => undefined);
  });

  function job(): Job {
    return jobFixture({
      image,
      input: receiptInput(receipt, [receipt.instances[0]?.member ?? ''], []),
      runsBucket: bus.isolation.buckets.runs,
      model: { static_mounts: ['chest-weights:/weights'] },
    });
  }

  it('fetches content once per hash into a volume that two runs mount read-only', async () => {
    const runs = [job(), job()];
    // Both at once on two slots: the second waits for the first one's copy instead of fetching again.
    for (const run of runs) await bus.publishJob(run);
    await waitFor(() => runs.every((run) => bus.outcome(run)), 'both outcomes', 60_000);

    for (const run of runs) {
      expect(bus.outcome(run)?.routingKey).toBe('job.finished');
      const files = await filesOf(await bus.storage.getStream(run.output.bucket, run.output.key));
      expect(files.get('used.txt')?.toString()).toBe(weights);
      expect(files.get('mount.txt')?.toString()).toBe('read-only\n');
    }
    expect(consumer.service.staticFetches()).toBe(1);
    const volume = await bus.docker.getVolume(staticVolumeNames(sha256).volume).inspect();
    expect(volume.Labels).toMatchObject({ 'dicomflow.static.sha256': sha256 });
    const metrics = await (await fetch(`http://127.0.0.1:${consumer.service.httpPort()}/metrics`)).text();
    expect(metrics).toMatch(/^dicomflow_consumer_static_fetches_total({[^}]*})? 1$/m);
  });

  it('reuses the volume in a later consumer process on the same engine (no fetch)', async () => {
    await consumer.close();
    consumer = await startConsumer(bus.isolation);
    const run = job();
    await bus.publishJob(run);
    await waitFor(() => bus.outcome(run) !== undefined, 'the outcome', 60_000);
    expect(bus.outcome(run)?.routingKey).toBe('job.finished');
    expect(consumer.service.staticFetches()).toBe(0);
  });

  it('refuses static content whose bytes do not match its sha256, and drops the copy', async () => {
    const tar = await tarOf([{ name: 'model.bin', body: Buffer.from('tampered\n') }]);
    const claimed = sha256Hex(Buffer.from('something else'));
    await bus.storage.putStream(
      bus.isolation.buckets.static,
      'bad-weights.tar',
      Readable.from([tar]),
      tar.length,
      {
        sha256: claimed,
      },
    );
    const run = jobFixture({
      image,
      input: receiptInput(receipt, [receipt.instances[0]?.member ?? ''], []),
      runsBucket: bus.isolation.buckets.runs,
      model: { static_mounts: ['bad-weights:/weights'] },
    });
    await bus.publishJob(run);
    await waitFor(() => bus.outcome(run) !== undefined, 'the outcome', 60_000);
    expect(bus.outcome(run)).toMatchObject({ routingKey: 'job.failed', body: { reason: 'input' } });
    const outcome = bus.outcome(run);
    expect(outcome?.routingKey === 'job.failed' && outcome.body.message).toMatch(/does not match its sha256/);
    const names = staticVolumeNames(claimed);
    const volumes = (await bus.docker.listVolumes()).Volumes.map((v) => v.Name);
    expect(volumes).not.toContain(names.volume);
    expect(volumes).not.toContain(names.ready);
  });

  it('fails a run whose static content does not exist: reason input', async () => {
    const run = jobFixture({
      image,
      input: receiptInput(receipt, [receipt.instances[0]?.member ?? ''], []),
      runsBucket: bus.isolation.buckets.runs,
      model: { static_mounts: ['no-such-weights:/weights'] },
    });
    await bus.publishJob(run);
    await waitFor(() => bus.outcome(run) !== undefined, 'the outcome', 60_000);
    expect(bus.outcome(run)).toMatchObject({ routingKey: 'job.failed', body: { reason: 'input' } });
  });
});

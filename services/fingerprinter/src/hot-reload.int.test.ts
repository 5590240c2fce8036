import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeBucketAndObjects, uniqueBucketName } from '@dicomflow/storage/testing';
import { testStorage } from './testing/environment.js';
import {
  startFingerprinter,
  waitForReadyz,
  type ReadyzBody,
  type RunningFingerprinter,
} from './testing/fingerprinter-harness.js';
import { RabbitBus, type FlowMatchedCollector } from './testing/rabbit-bus.js';
import { fixtureInstance, putReceipt } from './testing/receipts.js';

// Matches every receipt; its file name sorts last, and runs are published one after the other in file
// name order, so once its flow.matched has arrived every other one of the same receipt has too.
const SENTINEL = 'zz-sentinel.yaml';

const storage = testStorage();
const bucket = uniqueBucketName('fp-reload');
let work: string;
let flows: string;
let bus: RabbitBus;
let fingerprinter: RunningFingerprinter;
let collector: FlowMatchedCollector;

function flowYaml(name: string, modality: string, priority = 0): string {
  return `name: ${name}\npriority: ${priority}\ntriggers:\n  - Modality: ^${modality}$\n`;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'fingerprinter-reload-'));
  flows = join(work, 'flows');
  await mkdir(flows);
  await writeFile(join(flows, SENTINEL), 'name: sentinel\ntriggers:\n  - Modality: .\n');
  await writeFile(join(flows, 'a.yaml'), flowYaml('a-v1', 'CT', 1));
  await storage.ensureBucket(bucket);
  bus = await RabbitBus.open();
  collector = await bus.collectFlowMatched(bucket);
  fingerprinter = await startFingerprinter(flows, {
    queue: bus.queue('fingerprinter.reload', [200]),
    exchanges: bus.exchanges,
    retryDelaysMs: [200],
    reloadDebounceMs: 50,
  });
});

afterAll(async () => {
  await fingerprinter.close();
  await bus.close();
  await removeBucketAndObjects(storage, bucket);
  await rm(work, { recursive: true, force: true });
});

/** Waits until /readyz shows these flows (file -> name) and these invalid files. */
async function expectLoaded(flowNames: Record<string, string>, invalid: string[] = []): Promise<ReadyzBody> {
  const expected = { ...flowNames, [SENTINEL]: 'sentinel' };
  return waitForReadyz(
    fingerprinter.port,
    (body) =>
      JSON.stringify(Object.fromEntries(body.details.flows.map((flow) => [flow.file, flow.name]))) ===
        JSON.stringify(Object.fromEntries(Object.entries(expected).sort())) &&
      JSON.stringify([...new Set(body.details.invalid.map((problem) => problem.file))]) ===
        JSON.stringify(invalid),
    `flows ${JSON.stringify(expected)} and invalid ${JSON.stringify(invalid)}`,
  );
}

/** Publishes a new CT + MR receipt and returns, per flow file that it triggered, the run's priority. */
async function runsOfNewReceipt(): Promise<Record<string, number>> {
  const index = {
    receiptId: randomUUID(),
    instances: [fixtureInstance('ct.dcm', { Modality: 'CT' }), fixtureInstance('mr.dcm', { Modality: 'MR' })],
  };
  await bus.publishStudyReceived(await putReceipt(storage, bucket, index));
  await collector.until(
    () => collector.of(index.receiptId).some((message) => message.body.flowFile === SENTINEL),
    'the sentinel flow.matched',
  );
  return Object.fromEntries(
    collector
      .of(index.receiptId)
      .filter((message) => message.body.flowFile !== SENTINEL)
      .map((message) => [message.body.flowFile, Number(message.priority)]),
  );
}

describe('fingerprinter: flow files changed while it runs', () => {
  it('matches with the flows of the moment through add, change, break, fix, rename-on-save and delete', async () => {
    await expectLoaded({ 'a.yaml': 'a-v1' });
    expect(await runsOfNewReceipt()).toEqual({ 'a.yaml': 1 });

    // add
    await writeFile(join(flows, 'b.yaml'), flowYaml('b-v1', 'MR', 2));
    await expectLoaded({ 'a.yaml': 'a-v1', 'b.yaml': 'b-v1' });
    expect(await runsOfNewReceipt()).toEqual({ 'a.yaml': 1, 'b.yaml': 2 });

    // change: a no longer triggers on this receipt
    await writeFile(join(flows, 'a.yaml'), flowYaml('a-v2', 'PT', 1));
    await expectLoaded({ 'a.yaml': 'a-v2', 'b.yaml': 'b-v1' });
    expect(await runsOfNewReceipt()).toEqual({ 'b.yaml': 2 });

    // break: a regex that does not compile; reported, and b's last valid version keeps matching
    await writeFile(join(flows, 'b.yaml'), 'name: b-v2\ntriggers:\n  - Modality: "^(MR"\n');
    const broken = await expectLoaded({ 'a.yaml': 'a-v2', 'b.yaml': 'b-v1' }, ['b.yaml']);
    expect(broken.status).toBe('ready');
    expect(broken.details.invalid).toEqual([
      {
        file: 'b.yaml',
        line: 3,
        field: 'triggers[0].Modality',
        reason: expect.stringMatching(/regular expression/) as string,
      },
    ]);
    expect(broken.details.flows.find((flow) => flow.file === 'b.yaml')).toMatchObject({
      lastValidVersion: true,
    });
    expect(await runsOfNewReceipt()).toEqual({ 'b.yaml': 2 });

    // fix
    await writeFile(join(flows, 'b.yaml'), flowYaml('b-v3', 'MR', 3));
    await expectLoaded({ 'a.yaml': 'a-v2', 'b.yaml': 'b-v3' });
    expect(await runsOfNewReceipt()).toEqual({ 'b.yaml': 3 });

    // an editor's save: a temporary file renamed over the original
    await writeFile(join(flows, '.a.yaml.tmp'), flowYaml('a-v3', 'CT', 4));
    await rename(join(flows, '.a.yaml.tmp'), join(flows, 'a.yaml'));
    await expectLoaded({ 'a.yaml': 'a-v3', 'b.yaml': 'b-v3' });
    expect(await runsOfNewReceipt()).toEqual({ 'a.yaml': 4, 'b.yaml': 3 });

    // delete
    await unlink(join(flows, 'b.yaml'));
    await expectLoaded({ 'a.yaml': 'a-v3' });
    expect(await runsOfNewReceipt()).toEqual({ 'a.yaml': 4 });
  });
});

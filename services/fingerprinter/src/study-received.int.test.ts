import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadQueueName, ERROR_HEADER } from '@dicomflow/broker';
import { removeBucketAndObjects, uniqueBucketName } from '@dicomflow/storage/testing';
import { generateCtSeries, newUid, waitFor } from '@dicomflow/test-helpers';
import { flowMatchedMessageIdFor, runIdFor } from './matching/run-identity.js';
import { testStorage } from './testing/environment.js';
import { readyz, startFingerprinter, type RunningFingerprinter } from './testing/fingerprinter-harness.js';
import { RabbitBus, type FlowMatchedCollector } from './testing/rabbit-bus.js';
import { fixtureInstance, indexOfFiles, putReceipt, studyReceivedFor } from './testing/receipts.js';

const RETRY_DELAYS_MS = [200];
const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';

const storage = testStorage();
const bucket = uniqueBucketName('fp-e2e');
let work: string;
let bus: RabbitBus;
let queue: string;
let fingerprinter: RunningFingerprinter;
let collector: FlowMatchedCollector;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'fingerprinter-e2e-'));
  const flows = join(work, 'flows');
  await mkdir(flows);
  await writeFile(join(flows, 'ct.yaml'), 'name: CT\npriority: 2\ntriggers:\n  - Modality: ^CT$\n');
  await writeFile(
    join(flows, 'ct-and-mr.yaml'),
    [
      'name: CT and MR',
      'priority: 5',
      'triggers:',
      '  - Modality: ^CT$',
      '  - Modality: ^MR$',
      'tar_subdir: [StudyInstanceUID]',
    ].join('\n'),
  );
  await writeFile(join(flows, 'pet.yaml'), 'name: PET\ntriggers:\n  - Modality: ^PT$\n');
  await writeFile(join(flows, 'typo.yaml'), 'name: typo\npriorty: 1\ntriggers:\n  - Modality: CT\n');
  await storage.ensureBucket(bucket);
  bus = await RabbitBus.open();
  queue = bus.queue('fingerprinter.e2e', RETRY_DELAYS_MS);
  collector = await bus.collectFlowMatched(bucket);
  fingerprinter = await startFingerprinter(flows, {
    queue,
    exchanges: bus.exchanges,
    retryDelaysMs: RETRY_DELAYS_MS,
    maxAttempts: 2,
  });
});

afterAll(async () => {
  await fingerprinter.close();
  await bus.close();
  await removeBucketAndObjects(storage, bucket);
  await rm(work, { recursive: true, force: true });
});

describe('fingerprinter: study.received -> flow.matched', () => {
  it('publishes one flow.matched per triggered flow, and the same runs again for a duplicate receipt', async () => {
    const study = newUid();
    const ct = await generateCtSeries(join(work, 'ct'), 3, {
      studyInstanceUid: study,
      rows: 16,
      columns: 16,
    });
    const mr = await generateCtSeries(join(work, 'mr'), 2, {
      studyInstanceUid: study,
      modality: 'MR',
      sopClassUid: MR_IMAGE_STORAGE,
      rows: 16,
      columns: 16,
    });
    const index = await indexOfFiles([...ct, ...mr]);
    const received = await putReceipt(storage, bucket, index);
    await bus.publishStudyReceived(received);

    const first = await collector.until(() => collector.of(index.receiptId).length === 2, 'two flow.matched');
    const byFlow = new Map(first.map((message) => [message.body.flowFile, message]));
    expect([...byFlow.keys()].sort()).toEqual(['ct-and-mr.yaml', 'ct.yaml']);
    const ctMembers = index.instances.slice(0, 3).map((instance) => instance.member);
    const allMembers = index.instances.map((instance) => instance.member);

    const { body: hashes } = await readyz(fingerprinter.port);
    const hashOf = (file: string): string | undefined =>
      hashes.details.flows.find((flow) => flow.file === file)?.hash;
    for (const [file, priority, members, tarSubdir] of [
      ['ct.yaml', 2, ctMembers, received.tarSubdir],
      ['ct-and-mr.yaml', 5, allMembers, ['StudyInstanceUID']],
    ] as const) {
      const message = byFlow.get(file);
      const runId = runIdFor(index.receiptId, file);
      expect(message?.body).toMatchObject({
        runId,
        receiptId: index.receiptId,
        flowFile: file,
        flowHash: hashOf(file),
        bucket,
        tarKey: received.tarKey,
        indexKey: received.indexKey,
        members,
        tarSubdir,
        priority,
        callingAeTitle: received.callingAeTitle,
        callingHost: received.callingHost,
      });
      expect(message?.body.flow.priority).toBe(priority);
      expect(message).toMatchObject({
        messageId: flowMatchedMessageIdFor(runId),
        correlationId: runId,
        priority,
        type: 'flow.matched',
      });
    }

    // storescp publishing the same receipt again (new message id, same receipt id).
    await bus.publishStudyReceived({ ...received, receivedAt: new Date().toISOString() });
    const all = await collector.until(
      () => collector.of(index.receiptId).length === 4,
      'the duplicate receipt to be matched again',
    );
    const again = all.filter((message) => message.body.receiptId === index.receiptId).slice(2);
    const ids = (messages: typeof all): string[] =>
      messages.map((m) => `${m.body.flowFile} ${m.body.runId} ${m.messageId}`).sort();
    expect(ids(again)).toEqual(ids(first));
  });

  it('drops a receipt whose index is gone, without a run or a dead letter', async () => {
    const index = { receiptId: randomUUID(), instances: [fixtureInstance('a.dcm', { Modality: 'CT' })] };
    await bus.publishStudyReceived(studyReceivedFor(bucket, index));
    await waitFor(
      () =>
        fingerprinter.logs.some(
          (line) =>
            line.correlationId === index.receiptId &&
            line.msg === 'message refers to something gone; dropped',
        ),
      'the gone receipt to be dropped',
    );
    expect(collector.of(index.receiptId)).toEqual([]);
    expect(await bus.messageCount(deadQueueName(queue))).toBe(0);
  });

  it('dead-letters a receipt whose index is not a receipt index', async () => {
    const receiptId = randomUUID();
    await storage.putBuffer(bucket, `${receiptId}.index.jsonl`, '{"receiptId": "broken"');
    await bus.publishStudyReceived(studyReceivedFor(bucket, { receiptId, instances: [] }));
    await waitFor(async () => (await bus.messageCount(deadQueueName(queue))) > 0, 'a dead letter');
    const dead = await bus.take(deadQueueName(queue));
    expect(JSON.parse(dead?.content.toString() ?? '{}')).toMatchObject({ receiptId });
    expect(String(dead?.properties.headers?.[ERROR_HEADER])).toMatch(/is not JSON/);
    expect(collector.of(receiptId)).toEqual([]);
  });

  it('shows the loaded flows and the invalid files on /readyz, and counts runs on /metrics', async () => {
    const { statusCode, body } = await readyz(fingerprinter.port);
    expect(statusCode).toBe(200);
    expect(body.checks).toEqual({ broker: { ok: true }, s3: { ok: true }, flows: { ok: true } });
    expect(body.details.flows.map((flow) => [flow.file, flow.name, flow.priority])).toEqual([
      ['ct-and-mr.yaml', 'CT and MR', 5],
      ['ct.yaml', 'CT', 2],
      ['pet.yaml', 'PET', 0],
    ]);
    expect(body.details.invalid).toEqual([
      { file: 'typo.yaml', line: 2, field: 'priorty', reason: expect.stringMatching(/priority/) as string },
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${fingerprinter.port}/metrics`)).text();
    expect(metrics).toMatch(/dicomflow_fingerprinter_flow_matched_total\{[^}]*flow="ct.yaml"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/dicomflow_fingerprinter_flows_active\{[^}]*\} 3/);
    expect(metrics).toMatch(/dicomflow_fingerprinter_flow_files_invalid\{[^}]*\} 1/);
  });
});

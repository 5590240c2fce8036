import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker, DEFAULT_RETRY_DELAYS_MS, suiteQueueList, type Broker } from '@dicomflow/broker';
import {
  rerunMessageId,
  rerunRunIdFor,
  type FlowFailed,
  type FlowMatched,
  type FlowRerun,
  type StudyReceived,
} from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { removeBucketAndObjects, uniqueBucketName } from '@dicomflow/storage/testing';
import { testBrokerConfig, waitFor } from '@dicomflow/test-helpers';
import { flowMatchedMessageIdFor } from './matching/run-identity.js';
import { testStorage } from './testing/environment.js';
import { startFingerprinter, type RunningFingerprinter } from './testing/fingerprinter-harness.js';
import { RabbitBus, uniqueName } from './testing/rabbit-bus.js';
import { fixtureInstance, putReceipt } from './testing/receipts.js';

/** A `flow.matched` or `flow.failed` as it arrived. */
interface Observed {
  readonly routingKey: string;
  readonly messageId: string;
  readonly correlationId: unknown;
  readonly body: FlowMatched | FlowFailed;
}

const storage = testStorage();
const bucket = uniqueBucketName('fp-rerun');
const prefix = `${uniqueName('test.fp-rerun')}.`;
const seen: Observed[] = [];
let work: string;
let bus: RabbitBus;
let publisher: Broker;
let watcher: amqp.ChannelModel;
let fingerprinter: RunningFingerprinter;
let received: StudyReceived;
let ctMembers: string[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'fingerprinter-rerun-'));
  const flows = join(work, 'flows');
  await mkdir(flows);
  await writeFile(
    join(flows, 'ct.yaml'),
    'name: CT\nversion: "2"\npriority: 3\ntriggers:\n  - Modality: ^CT$\n',
  );
  await writeFile(join(flows, 'mr.yaml'), 'name: MR\ntriggers:\n  - Modality: ^MR$\n');
  await storage.ensureBucket(bucket);
  const index = {
    receiptId: randomUUID(),
    instances: [
      fixtureInstance('s1/a.dcm', { Modality: 'CT' }),
      fixtureInstance('s1/b.dcm', { Modality: 'CT' }),
      fixtureInstance('s2/c.dcm', { Modality: 'SR' }),
    ],
  };
  ctMembers = ['s1/a.dcm', 's1/b.dcm'];
  received = await putReceipt(storage, bucket, index);

  bus = await RabbitBus.open();
  for (const queue of suiteQueueList(prefix)) bus.forget(queue.name, DEFAULT_RETRY_DELAYS_MS);
  watcher = await amqp.connect(testBrokerConfig());
  const channel = await watcher.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  for (const key of ['flow.matched', 'flow.failed']) await channel.bindQueue(queue, bus.exchange, key);
  await channel.consume(
    queue,
    (message) => {
      if (!message) return;
      seen.push({
        routingKey: message.fields.routingKey,
        messageId: String(message.properties.messageId),
        correlationId: message.properties.correlationId,
        body: JSON.parse(message.content.toString('utf8')) as FlowMatched | FlowFailed,
      });
    },
    { noAck: true },
  );
  publisher = await connectBroker({
    config: testBrokerConfig(),
    logger: createLogger({ service: 'fp-rerun-test', level: 'silent' }),
    ...bus.exchanges,
    connectionName: uniqueName('fp-rerun-test'),
  });
  // The suite's queues (no queue of its own): the fingerprinter consumes flow.rerun only then.
  fingerprinter = await startFingerprinter(
    flows,
    { exchanges: bus.exchanges },
    { RABBIT_QUEUE_PREFIX: prefix },
  );
});

afterAll(async () => {
  await fingerprinter.close();
  await publisher.close();
  await watcher.close();
  await bus.close();
  await removeBucketAndObjects(storage, bucket);
  await rm(work, { recursive: true, force: true });
});

/** Publishes a rerun of `flowFile` on the receipt (as the tracker does) and waits for what it started. */
async function rerun(flowFile: string, receipt: StudyReceived = received): Promise<Observed> {
  const rerunOf = randomUUID();
  const rerunId = randomUUID();
  const request: FlowRerun = {
    runId: rerunRunIdFor(rerunOf, rerunId),
    rerunOf,
    rerunId,
    requestedAt: new Date().toISOString(),
    receiptId: receipt.receiptId,
    flowFile,
    flowName: 'as it was',
    flowVersion: '1',
    bucket: receipt.bucket,
    tarKey: receipt.tarKey,
    indexKey: receipt.indexKey,
    tarSubdir: [...receipt.tarSubdir],
    callingAeTitle: receipt.callingAeTitle,
    callingHost: receipt.callingHost,
  };
  await publisher.publish('flow.rerun', request, {
    messageId: rerunMessageId(rerunOf, rerunId),
    correlationId: request.runId,
  });
  let found: Observed | undefined;
  await waitFor(() => {
    found = seen.find((message) => message.body.runId === request.runId);
    return found !== undefined;
  }, `the outcome of the rerun of ${flowFile}`);
  if (!found) throw new Error('unreachable');
  return found;
}

describe('fingerprinter: flow.rerun', () => {
  it('starts the new run with the flow file as loaded now, on the files it selects', async () => {
    const started = await rerun('ct.yaml');
    const runId = started.body.runId;
    expect(started).toMatchObject({
      routingKey: 'flow.matched',
      messageId: flowMatchedMessageIdFor(runId),
      correlationId: runId,
    });
    expect(started.body).toMatchObject({
      receiptId: received.receiptId,
      flowFile: 'ct.yaml',
      flow: { name: 'CT', version: '2' },
      members: ctMembers,
      bucket,
      indexKey: received.indexKey,
      tarSubdir: received.tarSubdir,
      priority: 3,
      callingAeTitle: received.callingAeTitle,
    });
  });

  it('fails the new run when the flow file is not loaded, no longer triggers, or the receipt is gone', async () => {
    expect(await rerun('deleted.yaml')).toMatchObject({
      routingKey: 'flow.failed',
      body: {
        reason: 'error',
        flowFile: 'deleted.yaml',
        flowName: 'as it was',
        message: 'the flow file deleted.yaml is not loaded (deleted, renamed or invalid): fix it, then rerun',
      },
    });
    expect(await rerun('mr.yaml')).toMatchObject({
      routingKey: 'flow.failed',
      body: {
        reason: 'input',
        message: `the flow file mr.yaml as loaded now does not trigger on receipt ${received.receiptId}`,
      },
    });
    const gone = { ...received, receiptId: randomUUID(), indexKey: `${randomUUID()}.index.jsonl` };
    const failed = await rerun('ct.yaml', gone);
    expect(failed).toMatchObject({ routingKey: 'flow.failed', body: { reason: 'input' } });
    expect((failed.body as FlowFailed).message).toMatch(`the receipt ${gone.receiptId} is gone`);
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadQueueName, DEFAULT_RETRY_DELAYS_MS, suiteQueueList, suiteQueues } from '@dicomflow/broker';
import { removeBucketAndObjects, uniqueBucketName } from '@dicomflow/storage/testing';
import { freePort, testEnvironment } from '@dicomflow/test-helpers';
import { flowMatchedMessageIdFor, runIdFor } from './matching/run-identity.js';
import { testStorage } from './testing/environment.js';
import { waitForReadyz } from './testing/fingerprinter-harness.js';
import { RabbitBus, type FlowMatchedCollector, type ObservedFlowMatched } from './testing/rabbit-bus.js';
import { fixtureInstance, putReceipt } from './testing/receipts.js';

// The built service, as production runs it (`npm run build` first).
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const RECEIPTS = 80;
const INSTANCES_PER_RECEIPT = 40;
const DUPLICATE_EVERY = 8;
const FLOWS: Record<string, { yaml: string; priority: number }> = {
  'ct.yaml': { yaml: 'priority: 1\ntriggers:\n  - Modality: ^CT$\n', priority: 1 },
  'mr.yaml': { yaml: 'priority: 3\ntriggers:\n  - Modality: ^MR$\n', priority: 3 },
  'both.yaml': { yaml: 'triggers:\n  - Modality: ^CT$\n  - Modality: ^MR$\n', priority: 0 },
};

/** Runs published at least twice because their receipt was published twice. */
const DUPLICATED_RUNS = Math.ceil(RECEIPTS / DUPLICATE_EVERY) * Object.keys(FLOWS).length;

const storage = testStorage();
const bucket = uniqueBucketName('fp-crash');
const QUEUE_PREFIX = `test.fp-crash-${randomUUID().slice(0, 8)}.`;
const STUDY_RECEIVED_QUEUE_NAME = suiteQueues(QUEUE_PREFIX).fingerprinter.name;
let work: string;
let bus: RabbitBus;
let collector: FlowMatchedCollector;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
  work = await mkdtemp(join(tmpdir(), 'fingerprinter-crash-'));
  await mkdir(join(work, 'flows'));
  await mkdir(join(work, 'conf.d'));
  for (const [file, { yaml }] of Object.entries(FLOWS)) await writeFile(join(work, 'flows', file), yaml);
  await storage.ensureBucket(bucket);
  // The process is started as in production, on exchanges and queue names of the test's own.
  bus = await RabbitBus.open();
  for (const queue of suiteQueueList(QUEUE_PREFIX)) bus.forget(queue.name, DEFAULT_RETRY_DELAYS_MS);
  collector = await bus.collectFlowMatched(bucket);
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await bus.close();
  await removeBucketAndObjects(storage, bucket);
  await rm(work, { recursive: true, force: true });
});

function startProcess(httpPort: number): ChildProcess {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      ...testEnvironment(),
      CONF_DIR: join(work, 'conf.d'),
      FLOW_DIRECTORY: join(work, 'flows'),
      HTTP_PORT: String(httpPort),
      HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      RABBIT_EXCHANGE: bus.exchange,
      RABBIT_QUEUE_PREFIX: QUEUE_PREFIX,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
}

describe('fingerprinter killed (SIGKILL) mid-run', () => {
  it('yields every run after a restart, each duplicate with the same run id and message id', async () => {
    await bus.assertStudyReceivedQueue(STUDY_RECEIVED_QUEUE_NAME);
    const receiptIds: string[] = [];
    for (let r = 0; r < RECEIPTS; r++) {
      const index = {
        receiptId: randomUUID(),
        instances: Array.from({ length: INSTANCES_PER_RECEIPT }, (_, i) =>
          fixtureInstance(`${r}/${i}.dcm`, { Modality: i % 2 === 0 ? 'CT' : 'MR' }),
        ),
      };
      const received = await putReceipt(storage, bucket, index);
      await bus.publishStudyReceived(received);
      // Some receipts twice, as storescp does when it crashed between publishing and cleaning up.
      if (r % DUPLICATE_EVERY === 0) await bus.publishStudyReceived(received);
      receiptIds.push(index.receiptId);
    }
    const expected = new Map<string, { receiptId: string; flowFile: string }>();
    for (const receiptId of receiptIds) {
      for (const flowFile of Object.keys(FLOWS))
        expected.set(runIdFor(receiptId, flowFile), { receiptId, flowFile });
    }

    // A backlog waits in the queue; kill the first process as soon as it has published a run.
    const first = startProcess(await freePort());
    await collector.until((messages) => messages.length > 0, 'the first flow.matched');
    first.kill('SIGKILL');
    expect((await exited(first)).signal).toBe('SIGKILL');
    const publishedBeforeKill = collector.messages.length;
    expect(publishedBeforeKill).toBeLessThan(expected.size);

    const port = await freePort();
    const second = startProcess(port);
    await waitForReadyz(port, (body) => body.status === 'ready', 'the restarted fingerprinter');
    const seen = (): Set<string> => new Set(collector.messages.map((message) => message.body.runId));
    await collector.until(
      () =>
        [...expected.keys()].every((runId) => seen().has(runId)) &&
        collector.messages.length >= expected.size + DUPLICATED_RUNS,
      `all ${expected.size} runs and ${DUPLICATED_RUNS} duplicates`,
      60_000,
    );
    second.kill('SIGTERM');
    expect(await exited(second)).toEqual({ code: 0, signal: null });

    // Nothing but the expected runs, each published with its deterministic ids at its flow's priority.
    expect([...seen()].sort()).toEqual([...expected.keys()].sort());
    const byRun = new Map<string, ObservedFlowMatched[]>();
    for (const message of collector.messages) {
      const run = expected.get(message.body.runId);
      expect(message.body).toMatchObject({ receiptId: run?.receiptId, flowFile: run?.flowFile });
      expect(message).toMatchObject({
        messageId: flowMatchedMessageIdFor(message.body.runId),
        correlationId: message.body.runId,
        priority: FLOWS[run?.flowFile ?? '']?.priority,
      });
      byRun.set(message.body.runId, [...(byRun.get(message.body.runId) ?? []), message]);
    }
    // A duplicate is the same message again: same ids and content, only the match time differs.
    for (const copies of byRun.values()) {
      const [original, ...duplicates] = copies.map((copy) => ({
        messageId: copy.messageId,
        body: { ...copy.body, matchedAt: '' },
      }));
      for (const duplicate of duplicates) expect(duplicate).toEqual(original);
    }
    const duplicated = [...byRun.values()].filter((copies) => copies.length > 1).length;
    expect(duplicated).toBeGreaterThanOrEqual(DUPLICATED_RUNS);
    expect(await bus.messageCount(deadQueueName(STUDY_RECEIVED_QUEUE_NAME))).toBe(0);
    expect(await bus.messageCount(STUDY_RECEIVED_QUEUE_NAME)).toBe(0);
  });
});

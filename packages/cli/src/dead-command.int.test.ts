import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectBroker,
  connectForDeadLetters,
  deleteSuiteQueues,
  PermanentError,
  suiteQueues,
  type Broker,
  type Subscription,
} from '@dicomflow/broker';
import { brokerConfigFrom, exchangesFrom, loadConfig } from '@dicomflow/config';
import type { StudyReceived } from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { testEnvironment, waitFor } from '@dicomflow/test-helpers';
import { ExitCode, runCli } from './index.js';
import { captureOutput } from './testing/cli-fixtures.js';

const RECEIVED: StudyReceived = {
  receiptId: '3f2c1b9e-8a47-4d2b-9c61-0e5f7a8b9c0d',
  receivedAt: new Date(0).toISOString(),
  grouping: 'association',
  callingAeTitle: 'SCU',
  calledAeTitle: 'SCP',
  callingHost: '127.0.0.1',
  bucket: 'incoming',
  tarKey: 'r-1.tar',
  indexKey: 'r-1.index.jsonl',
  tarSize: 1024,
  tarSubdir: [],
  instanceCount: 1,
  studies: [],
};

describe('dicomflow dead list / replay, against RabbitMQ', () => {
  const id = randomBytes(4).toString('hex');
  const saved = { ...process.env };
  let broker: Broker;
  let subscription: Subscription;
  let fixed = false;
  const handled: string[] = [];
  const queue = suiteQueues(`cli-dead-${id}.`).fingerprinter.name;

  beforeAll(async () => {
    Object.assign(process.env, testEnvironment(), {
      RABBIT_EXCHANGE: `cli-dead-${id}`,
      RABBIT_QUEUE_PREFIX: `cli-dead-${id}.`,
    });
    const config = loadConfig('fingerprinter', { env: process.env });
    broker = await connectBroker({
      config: brokerConfigFrom(config),
      logger: createLogger({ service: 'cli-test', level: 'silent' }),
      ...exchangesFrom(config),
    });
    subscription = await broker.consume(
      { queue, bindings: ['study.received'], maxAttempts: 1, retryDelaysMs: [50] },
      async (_body, ctx) => {
        await Promise.resolve();
        if (!fixed) throw new PermanentError('no flow folder');
        handled.push(ctx.messageId);
      },
    );
  });

  afterAll(async () => {
    await subscription.cancel();
    await broker.close();
    const connection = await connectForDeadLetters(
      brokerConfigFrom(loadConfig('fingerprinter', { env: process.env })),
    );
    const channel = await connection.createChannel();
    await deleteSuiteQueues(channel, `cli-dead-${id}.`, [50]);
    await channel.deleteExchange(`cli-dead-${id}`);
    await channel.deleteExchange(`cli-dead-${id}.dead`);
    await connection.close();
    process.env = saved;
  });

  it('lists the dead letter with its reason and run, replays it by id once fixed, then has none', async () => {
    await broker.publish('study.received', RECEIVED, { messageId: 'dead-1', correlationId: 'run-1' });
    const listing = captureOutput();
    await waitFor(async () => {
      listing.stdout.length = 0;
      await runCli(['dead', 'list'], listing);
      return listing.stdout[0]?.includes('dead-1') === true;
    }, 'the dead letter listed');
    expect(listing.stdout[0]?.split('\t').slice(0, 4)).toEqual([queue, 'dead-1', 'permanent', 'run-1']);
    expect(listing.stdout[0]).toContain('no flow folder');

    const json = captureOutput();
    expect(await runCli(['dead', 'list', '--json'], json)).toBe(ExitCode.ok);
    expect(JSON.parse(json.stdout.join('\n'))).toEqual([
      expect.objectContaining({ id: 'dead-1', queue, reason: 'permanent', runId: 'run-1', attempts: 1 }),
    ]);

    const unknown = captureOutput();
    expect(await runCli(['dead', 'replay', 'no-such-id'], unknown)).toBe(ExitCode.problems);
    expect(unknown.stderr).toEqual(['dicomflow: no dead letter has the id no-such-id']);

    fixed = true;
    const replay = captureOutput();
    expect(await runCli(['dead', 'replay', 'dead-1'], replay)).toBe(ExitCode.ok);
    expect(replay.stdout).toEqual([
      `put back dead-1 on ${queue} (study.received)`,
      '1 dead letter(s) put back',
    ]);
    await waitFor(() => handled.includes('dead-1'), 'the replayed message handled');
    const after = captureOutput();
    expect(await runCli(['dead', 'list'], after)).toBe(ExitCode.ok);
    expect(after.stdout).toEqual(['no dead letters']);
  });

  it('refuses a replay without a choice, or with an unknown queue', async () => {
    const none = captureOutput();
    expect(await runCli(['dead', 'replay'], none)).toBe(ExitCode.usage);
    expect(none.stderr[0]).toBe('dicomflow: dead replay needs message ids, or --queue <queue>, or --all');
    const wrong = captureOutput();
    expect(await runCli(['dead', 'replay', '--queue', 'nope'], wrong)).toBe(ExitCode.usage);
    expect(wrong.stderr[0]).toContain('no suite queue is called nope');
  });
});

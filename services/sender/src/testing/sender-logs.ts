import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { suiteQueues } from '@dicomflow/broker';
import { loadConfig } from '@dicomflow/config';
import { createLogger } from '@dicomflow/runtime';
import { testBrokerConfig } from '@dicomflow/test-helpers';
import { createService } from '../service.js';
import type { SenderTestContext } from './peers.js';
import { senderEnvironment, type InProcessSender } from './sender-harness.js';

/** One parsed log line. */
export type LogLine = Record<string, unknown>;

/** A sender whose log lines (debug and above) the test reads, to wait for what it did rather than a time. */
export interface LoggedSender extends InProcessSender {
  readonly logs: readonly LogLine[];
  /** The run's `retrying target` lines: one per failed round of a target, written as its backoff wait starts. */
  retries(runId: string): LogLine[];
  /** The broker's lines for a copy of the run's flow.finished it settled (acked, retried or dead-lettered). */
  settled(runId: string): LogLine[];
}

const SETTLED = new Set([
  'message handled',
  'message refers to something gone; dropped',
  'handler failed; retrying later',
  'message dead-lettered',
  'channel closed while handling; the message will be redelivered',
  'cannot store the retry or dead-letter copy; requeueing the message',
]);

/**
 * Starts a sender like {@link SenderWorld.startSender} (same environment, `overrides` on top), logging to
 * memory; it is closed after the test. Lines are echoed to stderr when TEST_LOG_LEVEL is set.
 */
export async function startLoggedSender(
  t: SenderTestContext,
  overrides: Record<string, string> = {},
): Promise<LoggedSender> {
  const confDir = await mkdtemp(join(tmpdir(), 'sender-conf-'));
  const config = loadConfig('sender', {
    confDir,
    env: { ...senderEnvironment(t.world.isolation, t.world.spoolDir), ...overrides },
  });
  const logs: LogLine[] = [];
  const echo = process.env.TEST_LOG_LEVEL !== undefined;
  const logger = createLogger({
    service: 'sender-test',
    level: 'debug',
    destination: {
      write(line: string) {
        logs.push(JSON.parse(line) as LogLine);
        if (echo) process.stderr.write(line);
      },
    },
  });
  const service = createService(config, logger);
  const close = async (): Promise<void> => {
    await service.close();
    await rm(confDir, { recursive: true, force: true });
  };
  t.defer(close);
  await service.start();
  return {
    service,
    config,
    close,
    logs,
    // The run id is bound on every line of a delivery (as runId, and as the message's correlationId).
    retries: (runId) => logs.filter((l) => l.msg === 'retrying target' && l.runId === runId),
    settled: (runId) =>
      logs.filter((l) => typeof l.msg === 'string' && SETTLED.has(l.msg) && l.correlationId === runId),
  };
}

/**
 * Returns a probe of the messages ready (not yet delivered to a consumer) in the sender's flow.finished
 * queue; its connection is closed after the test.
 */
export async function flowFinishedReady(t: SenderTestContext): Promise<() => Promise<number>> {
  const queue = suiteQueues(t.world.isolation.queuePrefix).sender.name;
  const connection = await amqp.connect(testBrokerConfig());
  t.defer(() => connection.close());
  const channel = await connection.createChannel();
  return async () => (await channel.checkQueue(queue)).messageCount;
}

// The invariant every fault test checks once the suite recovered by itself (issue 16):
// - every instance that got a success status reached the destination of the run it triggered exactly once
//   (a kill mid-send may repeat the instances in flight at the kill), or that run failed with a reason;
// - no message is left in a queue, unacknowledged, or dead-lettered without a reason;
// - no model container and no job folder is left behind;
// - every service answers /readyz again (the caller says by when).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connectForDeadLetters, listDeadLetters, suiteQueueList } from '@dicomflow/broker';
import { runCommand, waitFor } from '@dicomflow/test-helpers';
import { expect } from 'vitest';
import { isDone, type E2eStack, type TrackedRun } from '../../e2e/support/e2e-stack.js';
import { deliveredCounts, queueCounts, type SentStudy } from './study.js';

export interface InvariantOptions {
  readonly stack: E2eStack;
  /** The flow (file name) whose runs the study triggered. */
  readonly flow: string;
  readonly study: SentStudy;
  /** Where the flow's destination writes what it receives. */
  readonly destinationDir: string;
  /** The RabbitMQ node of the stack when it is not the machine's (rabbitmqctl -n). */
  readonly rabbitNode?: string;
  /** How long the runs get to finish. */
  readonly timeoutMs?: number;
}

/** What the check found, for the test's own assertions and its failure messages. */
export interface InvariantReport {
  readonly runs: TrackedRun[];
  readonly delivered: Map<string, number>;
  readonly missing: string[];
  /** Instances that arrived more than once, and how often. */
  readonly repeated: [string, number][];
  /** Copies beyond the first, summed over every instance. */
  readonly extraCopies: number;
  readonly stuckMessages: { name: string; ready: number; unacked: number }[];
  readonly deadWithoutReason: string[];
  readonly leftContainers: string[];
  readonly leftJobFolders: string[];
}

/**
 * Waits until every accepted instance arrived or every run of the flow is failed, then checks the rest of
 * the invariant. Returns what it found; {@link describeReport} turns it into a failure message.
 */
export async function checkInvariant(options: InvariantOptions): Promise<InvariantReport> {
  const { stack, flow, study } = options;
  const accepted = [...study.accepted];
  let runs: TrackedRun[] = [];
  let delivered = new Map<string, number>();
  const failedWithReason = (run: TrackedRun): boolean => run.status === 400 && run.failure !== null;
  await waitFor(
    async () => {
      runs = await stack.runs(flow);
      delivered = await deliveredCounts(options.destinationDir, study.all);
      const allArrived = accepted.every((uid) => delivered.has(uid));
      const settled = runs.length > 0 && runs.every(isDone);
      return settled && (allArrived || runs.some(failedWithReason));
    },
    `the runs of ${flow} to deliver the ${accepted.length} accepted instances`,
    options.timeoutMs ?? 240_000,
  ).catch((err: unknown) => {
    const seen = runs.map((r) => `${r.id} ${r.statusName} ${JSON.stringify(r.failure)}`).join('\n');
    throw new Error(
      `${(err as Error).message}\nruns: ${seen}\ndelivered ${delivered.size}/${accepted.length}\n` +
        `--- service output ---\n${stack.logs().split('\n').slice(-80).join('\n')}`,
    );
  });
  // Whatever is still queued is retried work that would deliver twice or a message nobody takes.
  const prefix = stack.env.RABBIT_QUEUE_PREFIX ?? '';
  let stuckMessages: InvariantReport['stuckMessages'] = [];
  await waitFor(
    async () => {
      stuckMessages = (await queueCounts(prefix, options.rabbitNode)).filter(
        (q) => !q.name.endsWith('.dead') && q.ready + q.unacked > 0,
      );
      return stuckMessages.length === 0;
    },
    'the suite queues to drain',
    60_000,
  ).catch(() => undefined);
  const deadWithoutReason = await deadLettersWithoutReason(stack);
  const leftContainers = await containersOf(stack.env.CONSUMER_ID ?? '');
  const leftJobFolders = await jobFoldersIn(stack.env.CONSUMER_WORK_DIR ?? '');
  const failed = runs.filter(failedWithReason);
  return {
    runs,
    delivered,
    missing: failed.length > 0 ? [] : accepted.filter((uid) => !delivered.has(uid)),
    repeated: [...delivered].filter(([, n]) => n > 1),
    extraCopies: [...delivered.values()].reduce((sum, n) => sum + n - 1, 0),
    stuckMessages,
    deadWithoutReason,
    leftContainers,
    leftJobFolders,
  };
}

/**
 * Asserts the invariant on a report: every run sent, nothing missing, at most `extraCopies` repeats, no
 * message left queued or dead without a reason, no container or job folder left, no service exited unasked.
 */
export function expectInvariant(report: InvariantReport, stack: E2eStack, extraCopies = 0): void {
  const message = describeReport(report);
  expect(report.runs.length, message).toBeGreaterThan(0);
  expect(
    report.runs.every((run) => run.status === 4),
    message,
  ).toBe(true);
  expect(report.missing, message).toEqual([]);
  expect(report.extraCopies, message).toBeLessThanOrEqual(extraCopies);
  expect(report.stuckMessages, message).toEqual([]);
  expect(report.deadWithoutReason, message).toEqual([]);
  expect(report.leftContainers, message).toEqual([]);
  expect(report.leftJobFolders, message).toEqual([]);
  expect(stack.exits, 'services that exited unasked').toEqual([]);
}

/** The report as lines for a failure message. */
export function describeReport(report: InvariantReport): string {
  return JSON.stringify(
    {
      runs: report.runs.map((r) => ({ id: r.id, status: r.statusName, failure: r.failure })),
      missing: report.missing.length,
      repeated: report.repeated,
      stuckMessages: report.stuckMessages,
      deadWithoutReason: report.deadWithoutReason,
      leftContainers: report.leftContainers,
      leftJobFolders: report.leftJobFolders,
    },
    null,
    2,
  );
}

async function deadLettersWithoutReason(stack: E2eStack): Promise<string[]> {
  const env = stack.env;
  const connection = await connectForDeadLetters({
    hostname: env.RABBIT_HOSTNAME ?? '127.0.0.1',
    port: Number(env.RABBIT_PORT ?? 5672),
    username: env.RABBIT_USERNAME ?? 'guest',
    password: env.RABBIT_PASSWORD ?? 'guest',
  });
  try {
    const queues = suiteQueueList(env.RABBIT_QUEUE_PREFIX ?? '').map((q) => q.name);
    const letters = await listDeadLetters(connection, queues);
    return letters.filter((l) => !l.reason || !l.error).map((l) => `${l.queue} ${l.type} ${l.id}`);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** The job folders in a work folder: `<work>/<consumer id>/<job>`. */
async function jobFoldersIn(work: string): Promise<string[]> {
  const folders: string[] = [];
  for (const consumer of await readdir(work).catch(() => [])) {
    const jobs = await readdir(join(work, consumer)).catch(() => []);
    folders.push(...jobs.map((job) => `${consumer}/${job}`));
  }
  return folders;
}

async function containersOf(consumerId: string): Promise<string[]> {
  const out = await runCommand('docker', [
    'ps',
    '-a',
    '--filter',
    `label=dicomflow.consumer=${consumerId}`,
    '--format',
    '{{.Names}} {{.Status}}',
  ]);
  return out.stdout.split('\n').filter((line) => line.trim() !== '');
}

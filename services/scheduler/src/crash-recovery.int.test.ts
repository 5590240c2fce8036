import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flowFinishedMessageId, jobMessageId } from '@dicomflow/messages';
import { waitFor } from '@dicomflow/test-helpers';
import { flowMatched } from './testing/fixtures.js';
import {
  newIsolation,
  recordedDispatches,
  schedulerEnvironment,
  TestBus,
  type Isolation,
} from './testing/scheduler-harness.js';

// The built service, as production runs it (`npx tsc --build` first).
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

const RUNS = 12;
const MODELS = 3;
/** The scheduler is killed when the test consumer has taken this many distinct jobs, then restarted. */
const KILL_AFTER_JOBS = [1, 10, 22];

describe('scheduler killed with SIGKILL while runs are in progress', () => {
  let work: string;
  let isolation: Isolation;
  let bus: TestBus;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'scheduler-crash-'));
    isolation = newIsolation();
    bus = await TestBus.open(isolation);
  });

  afterAll(async () => {
    for (const child of children) await kill(child);
    await bus.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  function startScheduler(): ChildProcess {
    const child = spawn(process.execPath, [MAIN], {
      env: { ...process.env, ...schedulerEnvironment(isolation), CONF_DIR: work, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.add(child);
    return child;
  }

  /** SIGTERM: drains and exits; resolves with how it exited. */
  async function stop(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => {
        resolve({ code, signal });
      }),
    );
    child.kill('SIGTERM');
    const result = await exited;
    children.delete(child);
    return result;
  }

  async function kill(child: ChildProcess): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    children.delete(child);
  }

  it('completes every run exactly once after restarts: each step dispatched once per message id', async () => {
    await bus.collectOutcomes();
    await bus.startConsumer();
    const runs = Array.from({ length: RUNS }, (_, i) =>
      flowMatched({ models: MODELS, gpu: i % 2 ? [1] : [] }),
    );
    // The scheduler's queue exists (as after its first start), so flow.matched waits there for it.
    await bus.broker.assertWorkQueue(isolation.queues.flowMatched, ['flow.matched']);
    for (const run of runs) await bus.publishFlowMatched(run);
    let scheduler = startScheduler();

    for (const jobs of KILL_AFTER_JOBS) {
      await waitFor(() => bus.ran.size >= jobs, `${jobs} jobs taken`, 60_000);
      await kill(scheduler);
      scheduler = startScheduler();
    }
    const finished = (): Set<string> => new Set(bus.outcomes.map((outcome) => outcome.messageId));
    await waitFor(() => finished().size === RUNS, 'every run outcome', 120_000);
    // Everything the scheduler decided gets published and recorded as such (the last mark may trail the
    // confirm the test saw).
    const published = async (): Promise<boolean> =>
      [...(await recordedDispatches(isolation)).values()].every((state) => state === 'dispatched');
    await waitFor(published, 'every dispatch marked published');
    expect(await stop(scheduler)).toEqual({ code: 0, signal: null });

    // Each run finished, once (a repeat would carry the same message id).
    expect(finished()).toEqual(new Set(runs.map((run) => flowFinishedMessageId(run.runId))));
    expect(new Set(bus.outcomes.map((outcome) => outcome.routingKey))).toEqual(new Set(['flow.finished']));
    // Each step of each run was dispatched under its one message id, and nothing else was.
    const expectedJobs = runs.flatMap((run) =>
      Array.from({ length: MODELS }, (_, step) => jobMessageId(run.runId, step)),
    );
    expect(new Set(bus.ran.keys())).toEqual(new Set(expectedJobs));
    // A job published again after a crash is the same job: same body, same queue, same priority.
    for (const delivery of bus.deliveries) {
      const first = bus.ran.get(delivery.messageId);
      expect(delivery.body).toEqual(first?.body);
      expect([delivery.routingKey, delivery.priority]).toEqual([first?.routingKey, first?.priority]);
    }
    // Each run went through its models in order.
    for (const run of runs) {
      const steps = bus.deliveriesOf(run.runId).map((delivery) => delivery.body.step);
      expect([...new Set(steps)]).toEqual([0, 1, 2]);
    }
    expect((await recordedDispatches(isolation)).size).toBe(RUNS * (MODELS + 1));
  });
});

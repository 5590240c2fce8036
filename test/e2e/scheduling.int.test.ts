// End to end: where jobs go. GPU jobs wait for a consumer with a GPU slot and ask the engine for exactly
// that device; a high-priority run overtakes queued low-priority runs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  buildTestModelImage,
  COPY_MODEL,
  generateCtSeries,
  nodelayShimPath,
  storescu,
  waitFor,
} from '@dicomflow/test-helpers';
import { AE_TITLE, isDone, startE2eStack, type E2eStack, E2E_TEST_TIMEOUT_MS } from './support/e2e-stack.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

let work: string;
let shim: string;
let copyImage: string;
let stack: E2eStack | undefined;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-scheduling-'));
  shim = await nodelayShimPath(work);
  copyImage = await buildTestModelImage(COPY_MODEL);
}, 120_000);

afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function sendStudy(s: E2eStack, dir: string, patientId: string): Promise<void> {
  const files = await generateCtSeries(join(work, dir), 1, { patientId, rows: 32, columns: 32 });
  const result = await storescu({
    port: s.aePort,
    calledAe: AE_TITLE,
    files,
    env: { ...process.env, LD_PRELOAD: shim },
  });
  expect(result.code, result.stderr).toBe(0);
}

describe('scheduling across consumers', () => {
  it('keeps a GPU run pending with a visible reason until a GPU consumer takes it and asks for its device', async () => {
    stack = await startE2eStack({ cpus: 1 });
    await stack.writeFlow('gpu.yaml', {
      name: 'gpu-flow',
      triggers: [{ PatientID: '^E2E-GPU$' }],
      models: [{ docker_kwargs: { image: copyImage }, gpu: true }],
    });
    await sendStudy(stack, 'gpu', 'E2E-GPU');

    const s = stack;
    let runId = '';
    await waitFor(async () => {
      const [run] = await s.runs('gpu-flow');
      runId = run?.id ?? '';
      return run !== undefined && run.dispatched !== null;
    }, 'the GPU job to be dispatched');
    // The CPU-only consumer never takes it: it stays queued, and the tracker says why.
    const pending = await s.run(runId);
    expect(pending.status).toBe(0);
    expect(pending.waitingFor).toMatch(/job\.gpu.*GPU slot/);
    expect(pending.steps[0]).toMatchObject({ state: 'dispatched', queue: 'job.gpu' });

    // A consumer with GPU 0 takes it; this machine has no GPU, so the engine refuses the device request
    // and the run fails with the engine's reason, on the step that asked for GPU 0.
    await s.addConsumer({ CPUS: '0', GPUS: '0' });
    const [run] = await s.waitForRuns('gpu-flow', 1, isDone);
    expect(run?.statusName).toBe('failed');
    const detail = await s.run(runId);
    expect(detail.steps[0]?.state).toBe('failed');
    // Our words name the slot's GPU id; the engine's say why it could not give it.
    expect(run?.failure?.message ?? '').toMatch(/GPU 0: could not select device driver/);
  });

  it('runs a priority-5 run before twenty queued priority-0 runs', async () => {
    stack = await startE2eStack({ cpus: 1, consumer: false });
    const flow = (name: string, patientId: string, priority: number): Record<string, unknown> => ({
      name,
      priority,
      triggers: [{ PatientID: `^${patientId}$` }],
      models: [{ docker_kwargs: { image: copyImage } }],
    });
    await stack.writeFlow('low.yaml', flow('low', 'E2E-LOW', 0));
    await stack.writeFlow('high.yaml', flow('high', 'E2E-HIGH', 5));
    for (let i = 0; i < 20; i++) await sendStudy(stack, `low-${i}`, 'E2E-LOW');
    await sendStudy(stack, 'high', 'E2E-HIGH');
    const s = stack;
    await waitFor(async () => {
      const queued = [...(await s.runs('low')), ...(await s.runs('high'))];
      return queued.filter((r) => r.dispatched !== null).length === 21;
    }, 'all 21 first jobs to be queued');

    // One consumer with one CPU slot: it takes the highest priority first.
    await stack.addConsumer({ CPUS: '1' });
    const low = await stack.waitForRuns('low', 20, (r) => r.finished !== null, 180_000);
    const [high] = await stack.waitForRuns('high', 1, (r) => r.finished !== null);
    const highFinished = Date.parse(high?.finished ?? '');
    for (const run of low) expect(Date.parse(run.finished ?? '')).toBeGreaterThan(highFinished);
  });
});

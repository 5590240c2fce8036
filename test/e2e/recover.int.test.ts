// End to end: an operator recovers runs with `dicomflow runs resend` and `dicomflow runs rerun`, after the
// cause was fixed. A run whose destination was down fails; once a storescp listens there, a resend delivers
// every instance and the run shows 4. A run whose model failed is rerun after its flow file was fixed: the
// new run (linked to the old one) is delivered.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli, type ExitCode } from '@dicomflow/cli';
import {
  buildTestModelImage,
  COPY_MODEL,
  freePort,
  generateCtSeries,
  nodelayShimPath,
  readFileMeta,
  storescu,
  waitFor,
} from '@dicomflow/test-helpers';
import { startDestination, type DcmtkDestination } from './support/destination.js';
import {
  AE_TITLE,
  isDone,
  startE2eStack,
  type E2eStack,
  type TrackedRunDetail,
  E2E_TEST_TIMEOUT_MS,
} from './support/e2e-stack.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

/** `GET /runs/:id` with what recovery adds. */
interface RecoveredRun extends TrackedRunDetail {
  readonly version: string;
  readonly rerunOf: string | null;
  readonly reruns: { runId: string; rerunId: string; requestedAt: string }[];
  readonly resends: { id: string; statusName: string; destinations: string[]; failure: unknown }[];
}

let stack: E2eStack;
let work: string;
let shim: string;
let copyImage: string;
const destinations: DcmtkDestination[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-recover-'));
  shim = await nodelayShimPath(work);
  copyImage = await buildTestModelImage(COPY_MODEL);
  // Few, quick retries: a run whose destination is down fails soon.
  stack = await startE2eStack({
    env: {
      SEND_MAX_ATTEMPTS: '2',
      SEND_RETRY_INITIAL_MS: '100',
      SEND_RETRY_MAX_MS: '200',
      SEND_TIMEOUT_MS: '5000',
    },
  });
  // The command reads the tracker's token as an operator's shell would have it.
  process.env.TRACKER_API_TOKEN = stack.env.TRACKER_API_TOKEN;
}, 240_000);

afterAll(async () => {
  delete process.env.TRACKER_API_TOKEN;
  await stack.close();
  for (const destination of destinations) await destination.process.stop();
  await rm(work, { recursive: true, force: true });
});

/** Runs `dicomflow <args>` against the stack's tracker; returns its exit code and lines. */
async function dicomflow(...args: string[]): Promise<{ code: ExitCode; stdout: string[]; stderr: string[] }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli([...args, '--tracker', stack.trackerUrl], {
    out: (line) => stdout.push(line),
    err: (line) => stderr.push(line),
  });
  return { code, stdout, stderr };
}

/** Sends a new study of `patientId` (3 CT instances) to our receiver; returns the SOP Instance UIDs. */
async function sendStudy(patientId: string): Promise<string[]> {
  const files = await generateCtSeries(join(work, patientId), 3, { patientId, rows: 32, columns: 32 });
  const result = await storescu({
    port: stack.aePort,
    calledAe: AE_TITLE,
    files,
    env: { ...process.env, LD_PRELOAD: shim },
  });
  expect(result.code, result.stderr).toBe(0);
  return Promise.all(files.map(async (file) => (await readFileMeta(file)).sopInstanceUid));
}

/** SOP Instance UIDs of what a destination received (one file per instance received). */
async function receivedUids(destination: DcmtkDestination): Promise<string[]> {
  const names = await readdir(destination.dir).catch(() => [] as string[]);
  const uids = await Promise.all(
    names.map(async (name) => (await readFileMeta(join(destination.dir, name))).sopInstanceUid),
  );
  return uids.sort();
}

/** Waits until the tracker shows run `id` with status `status`; returns it. */
async function waitForStatus(id: string, status: number): Promise<RecoveredRun> {
  let last: RecoveredRun | undefined;
  await waitFor(
    async () => {
      last = (await stack.run(id).catch(() => undefined)) as RecoveredRun | undefined;
      return last?.status === status;
    },
    `run ${id} at status ${status}`,
    180_000,
  ).catch((err: unknown) => {
    throw new Error(
      `${(err as Error).message}; last seen: ${JSON.stringify(last)}\n${stack.logs().slice(-4000)}`,
    );
  });
  if (!last) throw new Error('unreachable');
  return last;
}

describe('operators recover runs', () => {
  it('resends a run whose destination was down once it is up: every instance arrives, the run shows 4', async () => {
    const port = await freePort();
    await stack.writeFlow('down.yaml', {
      name: 'down',
      triggers: [{ PatientID: '^E2E-RECOVER-SEND$' }],
      models: [{ docker_kwargs: { image: copyImage } }],
      destinations: [{ host: '127.0.0.1', port, ae_title: 'DEST' }],
    });
    const sent = await sendStudy('E2E-RECOVER-SEND');
    const [failed] = await stack.waitForRuns('down', 1, isDone, 180_000);
    expect(failed).toMatchObject({ status: 400, failure: { reason: 'send-unreachable' } });
    const runId = failed?.id ?? '';

    // The cause fixed: a storescp listens on the destination's port now.
    const destination = await startDestination(work, shim, { port, folder: 'down-destination' });
    destinations.push(destination);
    const resend = await dicomflow('runs', 'resend', runId);
    expect(resend.code, resend.stderr.join('\n')).toBe(0);
    expect(resend.stdout[0]).toMatch(
      new RegExp(
        `^resend [0-9a-f-]{36} of run ${runId} requested: sending to DEST@127\\.0\\.0\\.1:${port}; `,
      ),
    );

    const run = await waitForStatus(runId, 4);
    expect(run).toMatchObject({ statusName: 'sent', failure: null, waitingFor: null });
    expect(run.resends).toEqual([
      expect.objectContaining({
        statusName: 'sent',
        destinations: [`DEST@127.0.0.1:${port}`],
        failure: null,
      }),
    ]);
    expect(await receivedUids(destination)).toEqual([...sent].sort());
  });

  it('reruns a run whose model failed after its flow file was fixed: the new run is delivered', async () => {
    const destination = await startDestination(work, shim, { folder: 'rerun-destination' });
    destinations.push(destination);
    const flow = {
      name: 'fixme',
      version: '1',
      triggers: [{ PatientID: '^E2E-RECOVER-RERUN$' }],
      destinations: [{ host: '127.0.0.1', port: destination.port, ae_title: 'DEST' }],
    };
    await stack.writeFlow('fixme.yaml', {
      ...flow,
      models: [{ docker_kwargs: { image: copyImage, entrypoint: ['/bin/sh', '-c', 'exit 1'] } }],
    });
    const sent = await sendStudy('E2E-RECOVER-RERUN');
    const [failed] = await stack.waitForRuns('fixme', 1, isDone, 180_000);
    expect(failed).toMatchObject({ status: 400, failure: { reason: 'exit-code' } });
    const runId = failed?.id ?? '';

    // Nothing to resend: the model never made an output.
    const refused = await dicomflow('runs', 'resend', runId);
    expect(refused.code).toBe(1);
    expect(refused.stderr[0]).toMatch(/^dicomflow: resend refused \(409\): run .* has no output to resend/);
    const unknown = await dicomflow('runs', 'rerun', '00000000-0000-4000-8000-000000000000');
    expect(unknown).toMatchObject({ code: 1 });
    expect(unknown.stderr[0]).toContain('knows no run 00000000-0000-4000-8000-000000000000');

    // The cause fixed: the flow file's model no longer fails.
    await stack.writeFlow('fixme.yaml', {
      ...flow,
      version: '2',
      models: [{ docker_kwargs: { image: copyImage } }],
    });
    await waitFor(async () => {
      const body = (await (await fetch(`${stack.urls.fingerprinter ?? ''}/readyz`)).json()) as {
        details?: { flows?: { file: string; version: string }[] };
      };
      return (body.details?.flows ?? []).some((f) => f.file === 'fixme.yaml' && f.version === '2');
    }, 'the fixed flow file loaded');

    const rerun = await dicomflow('runs', 'rerun', runId, '--json');
    expect(rerun.code, rerun.stderr.join('\n')).toBe(0);
    const answer = JSON.parse(rerun.stdout.join('\n')) as {
      runId: string;
      rerunOf: string;
      flowFile: string;
    };
    expect(answer).toMatchObject({ rerunOf: runId, flowFile: 'fixme.yaml' });
    expect(answer.runId).not.toBe(runId);

    const rerunRun = await waitForStatus(answer.runId, 4);
    expect(rerunRun).toMatchObject({ rerunOf: runId, version: '2', flowFile: 'fixme.yaml', failure: null });
    expect(await receivedUids(destination)).toEqual([...sent].sort());
    const original = (await stack.run(runId)) as RecoveredRun;
    expect(original).toMatchObject({
      status: 400,
      reruns: [expect.objectContaining({ runId: answer.runId })],
    });
  });

  it('refuses to resend a run that is not there', async () => {
    const missing = randomUUID();
    const answer = await dicomflow('runs', 'resend', missing);
    expect(answer).toMatchObject({ code: 1, stderr: [expect.stringContaining(`knows no run ${missing}`)] });
  });
});

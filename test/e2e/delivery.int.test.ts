// End to end: delivery failures as a user sees them in the tracker. Each case runs the whole suite (copy
// model) and then checks the run row, its failure reason and the study manifest.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  buildTestModelImage,
  convertTransferSyntax,
  COPY_MODEL,
  freePort,
  generateCtSeries,
  newUid,
  nodelayShimPath,
  readFileMeta,
  startOrthanc,
  storescu,
  type RunningOrthanc,
} from '@dicomflow/test-helpers';
import { AE_TITLE, isDone, startE2eStack, type E2eStack, E2E_TEST_TIMEOUT_MS } from './support/e2e-stack.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

let stack: E2eStack;
let work: string;
let shim: string;
let copyImage: string;
/** Knows no calling AE title and accepts only known callers: refuses the sender's association. */
let refusing: RunningOrthanc;
/** Accepts every caller, but only implicit VR little endian. */
let implicitOnly: RunningOrthanc;
/** A loopback port nothing listens on. */
let deadPort: number;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-delivery-'));
  shim = await nodelayShimPath(work);
  copyImage = await buildTestModelImage(COPY_MODEL);
  refusing = await startOrthanc({ aeTitle: 'REFUSING', allowAnyCaller: false });
  implicitOnly = await startOrthanc({ aeTitle: 'IMPLICIT', acceptedTransferSyntaxes: ['1.2.840.10008.1.2'] });
  deadPort = await freePort();
  // Few, quick retries: an unreachable destination fails within seconds.
  stack = await startE2eStack({
    env: {
      SEND_MAX_ATTEMPTS: '2',
      SEND_RETRY_INITIAL_MS: '200',
      SEND_RETRY_MAX_MS: '400',
      SEND_TIMEOUT_MS: '5000',
    },
  });
}, 240_000);

afterAll(async () => {
  await stack.close();
  await refusing.stop();
  await implicitOnly.stop();
  await rm(work, { recursive: true, force: true });
});

interface Manifest {
  readonly revision: number;
  readonly instanceCount: number;
  readonly series: { seriesInstanceUid: string; instanceCount: number }[];
  readonly runs: { id: string; statusName: string }[];
}

async function manifest(studyInstanceUid: string): Promise<Manifest> {
  const response = await stack.trackerGet(`/studies/${studyInstanceUid}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Manifest;
}

/** Sends a small study of its own patient ID; returns its study UID and files. */
async function sendStudy(name: string, count: number): Promise<{ study: string; files: string[] }> {
  const study = newUid();
  const files = await generateCtSeries(join(work, name), count, {
    patientId: `E2E-${name.toUpperCase()}`,
    studyInstanceUid: study,
    rows: 64,
    columns: 64,
  });
  await send(files);
  return { study, files };
}

async function send(files: string[]): Promise<void> {
  const result = await storescu({
    port: stack.aePort,
    calledAe: AE_TITLE,
    files,
    env: { ...process.env, LD_PRELOAD: shim },
  });
  expect(result.code, result.stderr).toBe(0);
}

function flow(name: string, destinations: { host: string; port: number; ae_title: string }[]) {
  return {
    name,
    triggers: [{ PatientID: `^E2E-${name.toUpperCase()}$` }],
    models: [{ docker_kwargs: { image: copyImage } }],
    destinations,
  };
}

describe('delivery failures in the tracker', () => {
  it('a destination that refuses our AE title: failed at once with send-rejected', async () => {
    await stack.writeFlow(
      'rejected.yaml',
      flow('rejected', [{ host: '127.0.0.1', port: refusing.dicomPort, ae_title: 'REFUSING' }]),
    );
    const { study } = await sendStudy('rejected', 2);
    const [run] = await stack.waitForRuns('rejected', 1, isDone);
    expect(run?.status).toBe(400);
    expect(run?.failure?.reason).toBe('send-rejected');
    expect(run?.finished).not.toBeNull();
    expect(run?.sent).toBeNull();
    expect(await refusing.instances()).toEqual([]);
    const m = await manifest(study);
    expect(m).toMatchObject({ revision: 1, instanceCount: 2 });
    expect(m.runs).toEqual([{ id: run?.id, name: 'rejected', status: 400, statusName: 'failed' }]);
  });

  it('an unreachable destination: failed with send-unreachable after the retries', async () => {
    await stack.writeFlow(
      'unreachable.yaml',
      flow('unreachable', [{ host: '127.0.0.1', port: deadPort, ae_title: 'NOBODY' }]),
    );
    const { study } = await sendStudy('unreachable', 1);
    const [run] = await stack.waitForRuns('unreachable', 1, isDone);
    expect(run?.status).toBe(400);
    expect(run?.failure?.reason).toBe('send-unreachable');
    expect((await manifest(study)).instanceCount).toBe(1);
  });

  it('two destinations, one failing: the good one gets everything, the run is failed', async () => {
    await stack.writeFlow(
      'half.yaml',
      flow('half', [
        { host: '127.0.0.1', port: implicitOnly.dicomPort, ae_title: 'IMPLICIT' },
        { host: '127.0.0.1', port: deadPort, ae_title: 'NOBODY' },
      ]),
    );
    const { files } = await sendStudy('half', 3);
    const [run] = await stack.waitForRuns('half', 1, isDone);
    expect(run?.status).toBe(400);
    expect(run?.failure?.reason).toBe('send-unreachable');
    expect(run?.destinations).toHaveLength(2);
    // Explicit little endian files go to the implicit-only node converted; all three arrive.
    const stored = new Set((await implicitOnly.instances()).map((i) => i.sopInstanceUid));
    for (const file of files) expect(stored.has((await readFileMeta(file)).sopInstanceUid), file).toBe(true);
  });

  it('a compressed transfer syntax the destination does not accept: reported per instance', async () => {
    await stack.writeFlow(
      'compressed.yaml',
      flow('compressed', [{ host: '127.0.0.1', port: implicitOnly.dicomPort, ae_title: 'IMPLICIT' }]),
    );
    const study = newUid();
    const plain = await generateCtSeries(join(work, 'compressed-src'), 2, {
      patientId: 'E2E-COMPRESSED',
      studyInstanceUid: study,
      rows: 64,
      columns: 64,
    });
    const compressed = [];
    for (const [i, file] of plain.entries()) {
      const out = join(work, `compressed-${i}.dcm`);
      await convertTransferSyntax(file, out, 'jpeg-ls-lossless');
      compressed.push(out);
    }
    await send(compressed);
    const [run] = await stack.waitForRuns('compressed', 1, isDone);
    expect(run?.status).toBe(400);
    expect(run?.failure?.reason).toBe('send-instances-refused');
    expect(run?.failure?.message ?? '').toMatch(/2/);
    const m = await manifest(study);
    expect(m.instanceCount).toBe(2);
    expect(m.runs.map((r) => r.statusName)).toEqual(['failed']);
  });

  it('the manifest revision grows when more of a study arrives later', async () => {
    await stack.writeFlow('later.yaml', flow('later', []));
    const study = newUid();
    const options = { patientId: 'E2E-LATER', studyInstanceUid: study, rows: 64, columns: 64 };
    await send(await generateCtSeries(join(work, 'later-1'), 2, { ...options, seriesNumber: 1 }));
    await stack.waitForRuns('later', 1, (r) => r.finished !== null);
    await send(await generateCtSeries(join(work, 'later-2'), 3, { ...options, seriesNumber: 2 }));
    await stack.waitForRuns('later', 2, (r) => r.finished !== null);
    const m = await manifest(study);
    expect(m.revision).toBe(2);
    expect(m.instanceCount).toBe(5);
    expect(m.series.map((s) => s.instanceCount).sort()).toEqual([2, 3]);
    expect(m.runs).toHaveLength(2);
  });
});

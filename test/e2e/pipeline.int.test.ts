// End to end through the seven services as `npm run stack` starts them, with a real Docker engine: dcmtk
// storescu sends studies to our receiver, flows run test model containers, and the results arrive at dcmtk
// storescp and Orthanc destinations. Each test sends studies of its own patient ID, which only its flow
// triggers on, so the tests share one running suite without seeing each other's runs.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  buildTestModelImage,
  COPY_MODEL,
  datasetDigest,
  generateCtSeries,
  newUid,
  nodelayShimPath,
  readFileMeta,
  runChecked,
  startOrthanc,
  storescu,
  waitFor,
  type RunningOrthanc,
} from '@dicomflow/test-helpers';
import { startDestination, type DcmtkDestination } from './support/destination.js';
import { AE_TITLE, isDone, startE2eStack, type E2eStack, E2E_TEST_TIMEOUT_MS } from './support/e2e-stack.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';

let stack: E2eStack;
let work: string;
let shim: string;
let copyImage: string;
let destination: DcmtkDestination;
let orthanc: RunningOrthanc;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-pipeline-'));
  shim = await nodelayShimPath(work);
  copyImage = await buildTestModelImage(COPY_MODEL);
  destination = await startDestination(work, shim);
  orthanc = await startOrthanc({ aeTitle: 'ORTHANC' });
  stack = await startE2eStack({ cpus: 2 });
}, 240_000);

afterAll(async () => {
  await stack.close();
  await destination.process.stop();
  await orthanc.stop();
  await rm(work, { recursive: true, force: true });
});

/** Sends `files` to our receiver in one association (with TCP_NODELAY on the sender). */
async function send(files: string[]): Promise<void> {
  const result = await storescu({
    port: stack.aePort,
    calledAe: AE_TITLE,
    callingAe: 'E2E-SCU',
    files,
    env: { ...process.env, LD_PRELOAD: shim },
  });
  expect(result.code, result.stderr).toBe(0);
}

/** Files received by the dcmtk destination whose SOP instance UID is one of `uids`, by UID. */
async function receivedAt(dir: string, uids: ReadonlySet<string>): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    const meta = await readFileMeta(path).catch(() => undefined);
    if (meta && uids.has(meta.sopInstanceUid)) found.set(meta.sopInstanceUid, path);
  }
  return found;
}

async function uidsAndDigests(files: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const file of files) out.set((await readFileMeta(file)).sopInstanceUid, await datasetDigest(file));
  return out;
}

const dest = (): { host: string; port: number; ae_title: string } => ({
  host: '127.0.0.1',
  port: destination.port,
  ae_title: 'DEST',
});

describe('the whole suite', () => {
  it('runs a copy model on a 200-instance CT series and delivers every instance unchanged', async () => {
    await stack.writeFlow('ct-copy.yaml', {
      name: 'ct-copy',
      version: '1',
      triggers: [{ PatientID: '^E2E-CT200$', Modality: '^CT$' }],
      models: [{ docker_kwargs: { image: copyImage }, timeout: 600 }],
      destinations: [dest()],
    });
    const files = await generateCtSeries(join(work, 'ct200'), 200, {
      patientId: 'E2E-CT200',
      studyInstanceUid: newUid(),
    });
    const sent = await uidsAndDigests(files);
    await send(files);

    const [run] = await stack.waitForRuns('ct-copy', 1, isDone, 300_000);
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    const received = await receivedAt(destination.dir, new Set(sent.keys()));
    expect(received.size).toBe(200);
    for (const [uid, path] of received) expect(await datasetDigest(path), uid).toBe(sent.get(uid));

    const detail = await stack.run(run?.id ?? '');
    expect(detail.status).toBe(4);
    expect(detail.steps).toHaveLength(1);
    expect(detail.steps[0]).toMatchObject({ step: 0, state: 'finished', image: copyImage, exitCode: 0 });
    expect(detail.steps[0]?.start).not.toBeNull();
    expect(detail.steps[0]?.end).not.toBeNull();
    for (const key of ['receivedToDispatchedMs', 'runningMs', 'sendingMs', 'totalMs'])
      expect(detail.timings[key], key).toBeGreaterThanOrEqual(0);
    expect(detail.received).not.toBeNull();
    expect(detail.sent).not.toBeNull();
  });

  it('chains two models: the second gets the first one’s output', async () => {
    // The first model renames every file; the second copies: what arrives proves both ran in order.
    const renameImage = await buildTestModelImage({
      name: 'suffix-model',
      script:
        'set -e\ncd /input\nfind . -type f | while read -r f; do mkdir -p "/output/$(dirname "$f")"; cp "$f" "/output/$f.step0"; done\n',
    });
    await stack.writeFlow('chain.yaml', {
      name: 'chain',
      triggers: [{ PatientID: '^E2E-CHAIN$' }],
      models: [{ docker_kwargs: { image: renameImage } }, { docker_kwargs: { image: copyImage } }],
      destinations: [dest()],
    });
    const files = await generateCtSeries(join(work, 'chain'), 3, {
      patientId: 'E2E-CHAIN',
      rows: 64,
      columns: 64,
    });
    const sent = await uidsAndDigests(files);
    await send(files);

    const [run] = await stack.waitForRuns('chain', 1, isDone);
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    const detail = await stack.run(run?.id ?? '');
    expect(detail.steps.map((s) => [s.step, s.image, s.state])).toEqual([
      [0, renameImage, 'finished'],
      [1, copyImage, 'finished'],
    ]);
    expect(Date.parse(detail.steps[1]?.start ?? '')).toBeGreaterThanOrEqual(
      Date.parse(detail.steps[0]?.end ?? ''),
    );
    const received = await receivedAt(destination.dir, new Set(sent.keys()));
    expect(received.size).toBe(3);
    for (const [uid, path] of received) expect(await datasetDigest(path)).toBe(sent.get(uid));
  });

  it('takes only the MR series of a CT+MR study, and a flow that does not match starts no run', async () => {
    await stack.writeFlow('mr-only.yaml', {
      name: 'mr-only',
      triggers: [{ PatientID: '^E2E-MIXED$', Modality: '^MR$' }],
      models: [{ docker_kwargs: { image: copyImage } }],
      destinations: [dest()],
    });
    await stack.writeFlow('pet-only.yaml', {
      name: 'pet-only',
      triggers: [{ PatientID: '^E2E-MIXED$', Modality: '^PT$' }],
      models: [{ docker_kwargs: { image: copyImage } }],
      destinations: [dest()],
    });
    const study = newUid();
    const small = { patientId: 'E2E-MIXED', studyInstanceUid: study, rows: 64, columns: 64 };
    const ct = await generateCtSeries(join(work, 'mixed-ct'), 4, { ...small, seriesNumber: 1 });
    const mr = await generateCtSeries(join(work, 'mixed-mr'), 3, {
      ...small,
      modality: 'MR',
      sopClassUid: MR_IMAGE_STORAGE,
      seriesNumber: 2,
    });
    await send([...ct, ...mr]);

    const [run] = await stack.waitForRuns('mr-only', 1, isDone);
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    const mrSent = await uidsAndDigests(mr);
    const ctSent = await uidsAndDigests(ct);
    expect((await receivedAt(destination.dir, new Set(mrSent.keys()))).size).toBe(3);
    expect((await receivedAt(destination.dir, new Set(ctSent.keys()))).size).toBe(0);
    // The receipt that started mr-only was matched against every flow by then: pet-only made no run.
    expect(await stack.runs('pet-only')).toEqual([]);
  });

  it('fails a run whose model exits non-zero: status 400 with the reason, nothing sent', async () => {
    const failingImage = await buildTestModelImage({
      name: 'failing-model',
      script: 'echo "model says: no lungs found" >&2\nexit 3\n',
    });
    await stack.writeFlow('failing.yaml', {
      name: 'failing',
      triggers: [{ PatientID: '^E2E-FAIL$' }],
      models: [{ docker_kwargs: { image: failingImage } }],
      destinations: [dest()],
    });
    const files = await generateCtSeries(join(work, 'fail'), 2, {
      patientId: 'E2E-FAIL',
      rows: 64,
      columns: 64,
    });
    await send(files);

    const [run] = await stack.waitForRuns('failing', 1, isDone);
    expect(run?.statusName).toBe('failed');
    expect(run?.failure?.reason).toBe('exit-code');
    expect(run?.sent).toBeNull();
    const detail = await stack.run(run?.id ?? '');
    expect(detail.steps[0]).toMatchObject({ state: 'failed', exitCode: 3 });
    expect(detail.steps[0]?.log).toContain('no lungs found');
    const sent = await uidsAndDigests(files);
    expect((await receivedAt(destination.dir, new Set(sent.keys()))).size).toBe(0);
  });

  it('delivers to Orthanc as a second destination', async () => {
    await stack.writeFlow('two-destinations.yaml', {
      name: 'two-destinations',
      triggers: [{ PatientID: '^E2E-ORTHANC$' }],
      models: [{ docker_kwargs: { image: copyImage } }],
      destinations: [dest(), { host: '127.0.0.1', port: orthanc.dicomPort, ae_title: orthanc.aeTitle }],
    });
    const files = await generateCtSeries(join(work, 'orthanc'), 5, {
      patientId: 'E2E-ORTHANC',
      rows: 64,
      columns: 64,
    });
    const sent = await uidsAndDigests(files);
    await send(files);

    const [run] = await stack.waitForRuns('two-destinations', 1, isDone);
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    expect(run?.destinations).toHaveLength(2);
    expect((await receivedAt(destination.dir, new Set(sent.keys()))).size).toBe(5);
    await waitFor(async () => (await orthanc.instances()).length >= 5, 'Orthanc to index the instances');
    const inOrthanc = (await orthanc.instances()).filter((i) => sent.has(i.sopInstanceUid));
    expect(inOrthanc).toHaveLength(5);
    const scratch = join(work, 'orthanc-files');
    await mkdir(scratch, { recursive: true });
    for (const instance of inOrthanc) {
      const path = join(scratch, `${instance.id}.dcm`);
      await writeFile(path, await orthanc.instanceFile(instance.id));
      expect(await datasetDigest(path)).toBe(sent.get(instance.sopInstanceUid));
    }
  });

  it('delivers to a DICOMweb server (STOW-RS) as a destination', async () => {
    const web = await startOrthanc({ aeTitle: 'WEB', dicomWeb: {} });
    try {
      const url = `http://127.0.0.1:${web.httpPort}/dicom-web`;
      await stack.writeFlow('dicomweb.yaml', {
        name: 'dicomweb',
        triggers: [{ PatientID: '^E2E-DICOMWEB$' }],
        models: [{ docker_kwargs: { image: copyImage } }],
        destinations: [{ url }],
      });
      const files = await generateCtSeries(join(work, 'dicomweb'), 4, {
        patientId: 'E2E-DICOMWEB',
        rows: 64,
        columns: 64,
      });
      const sent = await uidsAndDigests(files);
      await send(files);

      const [run] = await stack.waitForRuns('dicomweb', 1, isDone);
      expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
      expect(run?.status).toBe(4);
      expect(run?.destinations).toEqual([url]);
      const inOrthanc = await web.instances();
      expect(inOrthanc.map((i) => i.sopInstanceUid).sort()).toEqual([...sent.keys()].sort());
      const scratch = join(work, 'dicomweb-files');
      await mkdir(scratch, { recursive: true });
      for (const instance of inOrthanc) {
        const path = join(scratch, `${instance.id}.dcm`);
        await writeFile(path, await web.instanceFile(instance.id));
        expect(await datasetDigest(path)).toBe(sent.get(instance.sopInstanceUid));
      }
    } finally {
      await web.stop();
    }
  });

  it('mounts model weights from the static folder (synced by static-storage) read-only into the model', async () => {
    // Weights dropped into the static folder as a tar: static-storage uploads them with their sha256.
    const weights = join(work, 'weights-src');
    await mkdir(weights, { recursive: true });
    await writeFile(join(weights, 'model.bin'), 'weights v1\n');
    await runChecked('tar', [
      '-cf',
      join(stack.env.STATIC_DIRECTORY ?? '', 'e2e-weights.tar'),
      '-C',
      weights,
      '.',
    ]);
    const staticUrl = stack.urls['static-storage'] ?? '';
    await waitFor(async () => {
      const list = (await (await fetch(`${staticUrl}/static`)).json()) as { items: { name: string }[] };
      return list.items.some((item) => item.name === 'e2e-weights');
    }, 'static-storage to upload the weights');

    // The model fails unless it finds the weights, and cannot write to them.
    const weightsImage = await buildTestModelImage({
      name: 'weights-model',
      script:
        'set -e\ngrep -q "weights v1" /weights/model.bin\nif touch /weights/x 2>/dev/null; then exit 9; fi\ncp -r /input/. /output/\n',
    });
    await stack.writeFlow('weights.yaml', {
      name: 'weights',
      triggers: [{ PatientID: '^E2E-WEIGHTS$' }],
      models: [{ docker_kwargs: { image: weightsImage }, static_mounts: ['e2e-weights:/weights'] }],
      destinations: [dest()],
    });
    const files = await generateCtSeries(join(work, 'weights'), 2, {
      patientId: 'E2E-WEIGHTS',
      rows: 64,
      columns: 64,
    });
    const sent = await uidsAndDigests(files);
    await send(files);

    const [run] = await stack.waitForRuns('weights', 1, isDone);
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    expect((await receivedAt(destination.dir, new Set(sent.keys()))).size).toBe(2);
  });
});

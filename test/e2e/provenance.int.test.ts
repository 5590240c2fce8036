// Provenance end to end: a two-model chain runs on a study, and every instance that reaches the destination
// maps, through the tracker's GET /instances/{uid}, back to the instances received, the flow file's hash,
// and the image id the engine ran for each step.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadFlowFile } from '@dicomflow/flows';
import {
  buildTestModelImage,
  COPY_MODEL,
  generateCtSeries,
  metricValue,
  nodelayShimPath,
  readFileMeta,
  runChecked,
  storescu,
} from '@dicomflow/test-helpers';
import { startDestination, type DcmtkDestination } from './support/destination.js';
import { AE_TITLE, isDone, startE2eStack, type E2eStack, E2E_TEST_TIMEOUT_MS } from './support/e2e-stack.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

let stack: E2eStack;
let work: string;
let shim: string;
let copyImage: string;
let renameImage: string;
let destination: DcmtkDestination;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-provenance-'));
  shim = await nodelayShimPath(work);
  copyImage = await buildTestModelImage(COPY_MODEL);
  renameImage = await buildTestModelImage({
    name: 'suffix-model',
    script:
      'set -e\ncd /input\nfind . -type f | while read -r f; do mkdir -p "/output/$(dirname "$f")"; cp "$f" "/output/$f.step0"; done\n',
  });
  destination = await startDestination(work, shim);
  stack = await startE2eStack({ cpus: 2 });
}, 240_000);

afterAll(async () => {
  await stack.close();
  await destination.process.stop();
  await rm(work, { recursive: true, force: true });
});

/** What `docker inspect` says of an image: the id the engine runs, and its registry digests. */
async function imageFacts(image: string): Promise<{ imageId: string; repoDigests: string[] }> {
  const { stdout } = await runChecked('docker', ['image', 'inspect', '--format', '{{json .}}', image]);
  const info = JSON.parse(stdout) as { Id: string; RepoDigests?: string[] | null };
  return { imageId: info.Id, repoDigests: info.RepoDigests ?? [] };
}

/** The SOP Instance UIDs of the files at the destination that are among `uids`. */
async function deliveredUids(dir: string, uids: ReadonlySet<string>): Promise<Set<string>> {
  const found = new Set<string>();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const meta = await readFileMeta(join(dir, name)).catch(() => undefined);
    if (meta && uids.has(meta.sopInstanceUid)) found.add(meta.sopInstanceUid);
  }
  return found;
}

interface RunProvenance {
  runId: string;
  flow: { name: string; file: string; hash: string };
  steps: { step: number; image: string; imageId: string; repoDigests: string[]; exitCode: number | null }[];
  receivedInstances: { sopInstanceUid: string }[];
  deliveredInstances: { sopInstanceUid: string; destination: string; step: number }[];
}

interface InstanceProvenance {
  sopInstanceUid: string;
  received: { receiptId: string; usedBy: string[] }[];
  delivered: { runId: string; step: number; destination: string }[];
  runs: RunProvenance[];
}

/** A tracker answer: its status and body (the shape the caller expects). */
async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { headers: stack.trackerHeaders });
  return { status: response.status, body: await response.json() };
}

describe('provenance', () => {
  it('maps every delivered instance of a two-model chain back to the received instances, flow hash and image digests', async () => {
    await stack.writeFlow('provenance-chain.yaml', {
      name: 'provenance-chain',
      version: '3',
      triggers: [{ PatientID: '^E2E-PROVENANCE$' }],
      models: [{ docker_kwargs: { image: renameImage } }, { docker_kwargs: { image: copyImage } }],
      destinations: [{ host: '127.0.0.1', port: destination.port, ae_title: 'DEST' }],
    });
    const loaded = await loadFlowFile(join(stack.flowsDir, 'provenance-chain.yaml'));
    if (!loaded.ok) throw new Error('the flow file does not load');
    const files = await generateCtSeries(join(work, 'chain'), 4, {
      patientId: 'E2E-PROVENANCE',
      rows: 64,
      columns: 64,
    });
    const sentUids = new Set<string>();
    for (const file of files) sentUids.add((await readFileMeta(file)).sopInstanceUid);
    const sent = await storescu({
      port: stack.aePort,
      calledAe: AE_TITLE,
      callingAe: 'E2E-SCU',
      files,
      env: { ...process.env, LD_PRELOAD: shim },
    });
    expect(sent.code, sent.stderr).toBe(0);

    const [run] = await stack.waitForRuns('provenance-chain', 1, isDone, 300_000);
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    const runId = run?.id ?? '';
    const delivered = await deliveredUids(destination.dir, sentUids);
    expect(delivered.size).toBe(4);
    const images = [await imageFacts(renameImage), await imageFacts(copyImage)];
    const target = `DEST@127.0.0.1:${destination.port}`;

    const ownAnswer = await getJson(`${stack.trackerUrl}/runs/${runId}/provenance`);
    expect(ownAnswer.status).toBe(200);
    const own = { body: ownAnswer.body as RunProvenance };
    expect(own.body.flow).toMatchObject({
      name: 'provenance-chain',
      file: 'provenance-chain.yaml',
      hash: loaded.hash,
    });
    expect(own.body.steps.map((s) => [s.step, s.image, s.imageId, s.repoDigests, s.exitCode])).toEqual([
      [0, renameImage, images[0]?.imageId, images[0]?.repoDigests, 0],
      [1, copyImage, images[1]?.imageId, images[1]?.repoDigests, 0],
    ]);
    expect(own.body.steps[0]?.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);

    for (const uid of delivered) {
      const reply = await getJson(`${stack.trackerUrl}/instances/${uid}`);
      expect(reply.status, uid).toBe(200);
      const answer = { body: reply.body as InstanceProvenance };
      // Where it went: delivered by the run's last step to the destination.
      expect(answer.body.delivered).toEqual([
        expect.objectContaining({ runId, step: 1, destination: target }),
      ]);
      const producer = answer.body.runs.find((r) => r.runId === runId);
      expect(producer, uid).toBeDefined();
      // Where it came from: the run's received instances are exactly what the sender sent.
      expect(new Set(producer?.receivedInstances.map((i) => i.sopInstanceUid))).toEqual(sentUids);
      expect(producer?.flow.hash).toBe(loaded.hash);
      expect(producer?.steps.map((s) => s.imageId)).toEqual(images.map((i) => i.imageId));
      // The copy models keep the UIDs, so the instance was also received: in the receipt that run took.
      expect(answer.body.received).toEqual([expect.objectContaining({ usedBy: [runId] })]);
    }
    expect(own.body.deliveredInstances.map((d) => d.sopInstanceUid).sort()).toEqual([...delivered].sort());

    const metrics = await (await fetch(`${stack.trackerUrl}/metrics`)).text();
    expect(metricValue(metrics, 'dicomflow_tracker_result_seconds_count', { flow: 'provenance-chain' })).toBe(
      1,
    );
  });
});

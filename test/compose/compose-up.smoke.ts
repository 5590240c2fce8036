// `docker-compose up` of compose.yaml as users run it, on this machine's Docker engine: the suite's image
// built with the Dockerfile, RabbitMQ / PostgreSQL / MinIO as the local stand-ins of
// scripts/compose-images.sh (no registry here), Grafana left out. dcmtk storescu sends CTs to the
// published DICOM port, a dcmtk storescp on this host is the destination, and the flow-tracker's API
// tells what happened. `npm run test:compose` builds the images first; not part of `npm test`.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  buildTestModelImage,
  dockerImageExists,
  freePort,
  generateCtSeries,
  newUid,
  nodelayShimPath,
  readFileMeta,
  runChecked,
  runCommand,
  storescu,
  waitFor,
} from '@dicomflow/test-helpers';
import { startDestination, type DcmtkDestination } from '../e2e/support/destination.js';

/** The runs API's token in this smoke test's .env. */
const TRACKER_TOKEN = 'smoke-tracker-token';
const ROOT = resolve(import.meta.dirname, '..', '..');
const COMPOSE_FILE = join(ROOT, 'compose.yaml');
const SUITE_IMAGE = 'dicomflow-local/dicomflow:smoke';
const PROJECT = `dfsmoke${randomBytes(3).toString('hex')}`;
// The project's network gets a fixed subnet so the flow can name this host (the gateway) before `up`.
const SUBNET = process.env.COMPOSE_SMOKE_SUBNET ?? '10.213.77.0/24';
const GATEWAY = SUBNET.replace(/\.0\/\d+$/, '.1');
const DICOM_PORT = Number(process.env.COMPOSE_SMOKE_DICOM_PORT ?? 10000);
const FLOW = 'compose-smoke';
// Each step waits at most this long: a bound on a hung stack, not a speed assertion.
const STEP_TIMEOUT_MS = 300_000;
const SENT = 4;
const FAILED = 400;
// compose.yaml's host folder of the consumers' job folders (one sub-folder per consumer id).
const CONSUMER_WORK_DIR = '/var/lib/dicomflow/work';

interface Run {
  readonly id: string;
  readonly status: number;
  readonly statusName: string;
  readonly failure: unknown;
}
interface RunDetail extends Run {
  readonly steps: { readonly state: string; readonly worker: string | null }[];
}
interface ContainerState {
  readonly service: string;
  readonly status: string;
  readonly health: string | undefined;
  readonly exitCode: number;
}

let work: string;
let overrideFile: string;
let envFile: string;
let trackerUrl: string;
let shim: string;
let destination: DcmtkDestination | undefined;
let firstRunId = '';
// Names of the consumer containers seen: the consumer ids (stable per replica), so the names of their job
// folders.
const consumerIds = new Set<string>();

/** The image variables of scripts/compose-images.sh, each checked to exist on the engine. */
async function localImages(): Promise<Record<string, string>> {
  const { stdout } = await runChecked('bash', [join(ROOT, 'scripts/compose-images.sh'), '--print-env']);
  const images = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  );
  for (const image of Object.values(images)) {
    if (!(await dockerImageExists(image)))
      throw new Error(`${image} is missing: run scripts/compose-images.sh (npm run test:compose does)`);
  }
  return images;
}

/** docker-compose with this test's project, override and env file, in a clean environment. */
async function compose(...args: string[]): Promise<string> {
  const result = await runCommand(
    'docker-compose',
    ['-p', PROJECT, '-f', COMPOSE_FILE, '-f', overrideFile, '--env-file', envFile, ...args],
    { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeoutMs: STEP_TIMEOUT_MS },
  );
  if (result.code !== 0)
    throw new Error(`docker-compose ${args.join(' ')} failed (${String(result.code)}):\n${result.stderr}`);
  return result.stdout;
}

async function containers(): Promise<ContainerState[]> {
  const { stdout } = await runChecked('docker', [
    'ps',
    '-aq',
    '--filter',
    `label=com.docker.compose.project=${PROJECT}`,
  ]);
  const ids = stdout.split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = JSON.parse((await runChecked('docker', ['inspect', ...ids])).stdout) as {
    Name: string;
    Config: { Labels: Record<string, string> };
    State: { Status: string; ExitCode: number; Health?: { Status: string } };
  }[];
  for (const c of inspected)
    if (c.Config.Labels['com.docker.compose.service'] === 'consumer')
      consumerIds.add(c.Name.replace(/^\//, ''));
  return inspected.map((c) => ({
    service: c.Config.Labels['com.docker.compose.service'] ?? '?',
    status: c.State.Status,
    health: c.State.Health?.Status,
    exitCode: c.State.ExitCode,
  }));
}

/** Every long-running container healthy and the one-shot `buckets` exited 0; `consumers` consumers. */
async function waitHealthy(consumers = 1): Promise<void> {
  let last: ContainerState[] = [];
  const ready = async (): Promise<boolean> => {
    last = await containers();
    const running = last.filter((c) => c.service !== 'buckets');
    const buckets = last.find((c) => c.service === 'buckets');
    return (
      running.filter((c) => c.service === 'consumer').length === consumers &&
      running.every((c) => c.status === 'running' && c.health === 'healthy') &&
      buckets?.status === 'exited' &&
      buckets.exitCode === 0
    );
  };
  await waitFor(ready, 'healthy containers', STEP_TIMEOUT_MS).catch((err: unknown) => {
    const seen = last.map((c) => `${c.service} ${c.status} ${c.health ?? '-'} ${String(c.exitCode)}`);
    throw new Error(`${String(err)}\n${seen.join('\n')}`);
  });
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(`${trackerUrl}${path}`, {
    headers: { authorization: `Bearer ${TRACKER_TOKEN}` },
  });
  if (!response.ok) throw new Error(`GET ${path}: ${String(response.status)}`);
  return (await response.json()) as T;
}

const runs = async (): Promise<Run[]> =>
  (await getJson<{ runs: Run[] }>(`/runs?flow=${FLOW}&limit=500`)).runs;

/** Waits until the tracker shows `count` runs of the flow, all sent (fails at the first failed one). */
async function waitForSentRuns(count: number): Promise<Run[]> {
  let last: Run[] = [];
  await waitFor(
    async () => {
      last = await runs().catch(() => []);
      const failed = last.find((r) => r.status === FAILED);
      if (failed) throw new Error(`run ${failed.id} failed: ${JSON.stringify(failed.failure)}`);
      return last.length >= count && last.every((r) => r.status === SENT);
    },
    `${String(count)} sent runs`,
    STEP_TIMEOUT_MS,
  );
  return last;
}

/** Sends a CT series of `count` small instances in one association to the published port 10000. */
async function sendCt(name: string, count: number): Promise<string[]> {
  const files = await generateCtSeries(join(work, name), count, {
    patientId: `SMOKE-${name}`,
    studyInstanceUid: newUid(),
    rows: 64,
    columns: 64,
  });
  const result = await storescu({
    port: DICOM_PORT,
    calledAe: 'STORESCP',
    callingAe: 'SMOKE-SCU',
    files,
    env: { ...process.env, LD_PRELOAD: shim },
  });
  expect(result.code, result.stderr).toBe(0);
  return Promise.all(files.map(async (f) => (await readFileMeta(f)).sopInstanceUid));
}

async function receivedUids(): Promise<Set<string>> {
  const uids = new Set<string>();
  for (const name of await readdir(destination.dir).catch(() => [] as string[])) {
    const meta = await readFileMeta(join(destination.dir, name)).catch(() => undefined);
    if (meta) uids.add(meta.sopInstanceUid);
  }
  return uids;
}

beforeAll(async () => {
  const images = await localImages();
  work = await mkdtemp(join(tmpdir(), 'compose-smoke-'));
  // The services run as the unprivileged user `node`: the flows folder mounted from here must be readable.
  await chmod(work, 0o755);
  shim = await nodelayShimPath(work);
  await runChecked(
    'docker',
    [
      'build',
      '--force-rm',
      '--network',
      'host',
      '--build-arg',
      `NODE_IMAGE=${images.DICOMFLOW_NODE_IMAGE ?? ''}`,
      '-t',
      SUITE_IMAGE,
      ROOT,
    ],
    { env: { ...process.env, DOCKER_BUILDKIT: '0' }, timeoutMs: 900_000 },
  );
  // A slow copy: long enough that a second consumer gets jobs while the first is busy.
  const model = await buildTestModelImage({
    name: 'compose-smoke-copy',
    script: 'set -e\nsleep 3\ncp -r "${DICOMFLOW_INPUT_DIR:-/input}/." "${DICOMFLOW_OUTPUT_DIR:-/output}/"\n',
  });
  destination = await startDestination(work, shim);
  const flows = join(work, 'flows');
  await mkdir(flows, { mode: 0o755 });
  await writeFile(
    join(flows, 'smoke.yaml'),
    stringify({
      name: FLOW,
      version: '1',
      triggers: [{ PatientID: '^SMOKE-', Modality: '^CT$' }],
      models: [{ docker_kwargs: { image: model }, timeout: 300 }],
      destinations: [{ host: GATEWAY, port: destination.port, ae_title: 'DEST' }],
    }),
    { mode: 0o644 },
  );
  overrideFile = join(work, 'compose.smoke.yaml');
  await writeFile(
    overrideFile,
    stringify({
      services: {
        // No Debian or npm package of Grafana: it stays out unless its profile is asked for.
        grafana: { profiles: ['grafana'] },
        fingerprinter: { volumes: [`${flows}:/opt/dicomflow/flows:ro`] },
      },
      networks: { default: { ipam: { config: [{ subnet: SUBNET }] } } },
    }),
  );
  const trackerPort = await freePort();
  trackerUrl = `http://127.0.0.1:${String(trackerPort)}`;
  const env: Record<string, string> = {
    RABBITMQ_PASSWORD: 'smoke-rabbit-secret',
    POSTGRES_PASSWORD: 'smoke-postgres-secret',
    MINIO_ROOT_PASSWORD: 'smoke-minio-secret',
    GRAFANA_ADMIN_PASSWORD: 'smoke-grafana-secret',
    DOCKER_GID: (await runChecked('stat', ['-c', '%g', '/var/run/docker.sock'])).stdout.trim(),
    DICOMFLOW_IMAGE: SUITE_IMAGE,
    RABBITMQ_IMAGE: images.RABBITMQ_IMAGE ?? '',
    POSTGRES_IMAGE: images.POSTGRES_IMAGE ?? '',
    MINIO_IMAGE: images.MINIO_IMAGE ?? '',
    DICOM_BIND: '127.0.0.1',
    DICOM_PORT: String(DICOM_PORT),
    TRACKER_BIND: '127.0.0.1',
    TRACKER_PORT: String(trackerPort),
    TRACKER_API_TOKEN: TRACKER_TOKEN,
    STATIC_BIND: '127.0.0.1',
    STATIC_PORT: String(await freePort()),
    RABBITMQ_UI_PORT: String(await freePort()),
    MINIO_CONSOLE_PORT: String(await freePort()),
  };
  envFile = join(work, 'smoke.env');
  await writeFile(
    envFile,
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
});

afterAll(async () => {
  if (overrideFile)
    await compose('down', '-v', '--remove-orphans').catch((err: unknown) => console.error(err));
  // A consumer id is its container's name: nothing else will use these folders again.
  for (const id of consumerIds) await rm(join(CONSUMER_WORK_DIR, id), { recursive: true, force: true });
  await destination?.process.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('docker-compose up of compose.yaml', () => {
  it('brings every container up healthy (buckets created, then exited 0)', async () => {
    await compose('up', '-d');
    await waitHealthy();
  });

  it('takes a CT on the published DICOM port and delivers it to the destination (status 4)', async () => {
    const uids = await sendCt('ct', 3);
    const [run] = await waitForSentRuns(1);
    firstRunId = run?.id ?? '';
    const detail = await getJson<RunDetail>(`/runs/${firstRunId}`);
    expect(detail.status).toBe(SENT);
    expect(detail.steps.map((s) => s.state)).toEqual(['finished']);
    const received = await receivedUids();
    for (const uid of uids) expect(received.has(uid), uid).toBe(true);
  });

  it('scaled to two consumers, both take jobs', async () => {
    await compose('up', '-d', '--no-recreate', '--scale', 'consumer=2');
    await waitHealthy(2);
    for (let i = 0; i < 6; i++) await sendCt(`scale-${String(i)}`, 1);
    const sent = await waitForSentRuns(7);
    const workers = new Set<string>();
    for (const run of sent) {
      const detail = await getJson<RunDetail>(`/runs/${run.id}`);
      for (const step of detail.steps) if (step.worker) workers.add(step.worker);
    }
    expect(workers.size).toBe(2);
    // Each consumer's id is its container's name, which compose keeps per replica when it recreates the
    // container (its host name, the container id, changes): a later life claims what an earlier one left.
    // (A step's worker is `<host name>/<consumer id>`.)
    for (const worker of workers) expect(consumerIds.has(worker.split('/').pop() ?? ''), worker).toBe(true);
  });

  it('keeps the runs across down and up (named volumes)', async () => {
    await compose('down');
    expect(await containers()).toEqual([]);
    await compose('up', '-d');
    await waitHealthy();
    const detail = await getJson<RunDetail>(`/runs/${firstRunId}`);
    expect(detail.status).toBe(SENT);
    expect((await runs()).length).toBe(7);
  });
});

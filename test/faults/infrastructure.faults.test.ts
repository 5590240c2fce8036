// Fault injection (issue 16): the parts the suite stands on fail while a study goes through it. The suite
// runs on servers of this test's own (a RabbitMQ node, a PostgreSQL cluster, MinIO, a Docker engine, a spool
// on a small tmpfs), so that stopping one never touches the machine's. Nothing is done by hand: each part
// comes back and the suite must recover by itself; then the invariant (support/invariant.ts) must hold.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMinio, type MinioProcess } from '@dicomflow/storage/testing';
import {
  buildTestModelImage,
  freePort,
  nodelayShimPath,
  startDcmtkStorescp,
  startDockerEngine,
  startPostgresCluster,
  startRabbitNode,
  type DockerEngine,
  type PostgresCluster,
  type RabbitNode,
  type RunningProcess,
} from '@dicomflow/test-helpers';
import { startE2eStack, type E2eStack } from '../e2e/support/e2e-stack.js';
import { checkInvariant, expectInvariant } from './support/invariant.js';
import { associationEnded, everyServiceReady, modelRunning } from './support/moments.js';
import { makeStudy, sendStudy, type SentStudy } from './support/study.js';

const SLOW_COPY_MODEL = {
  name: 'slow-copy-model',
  script: 'set -e\nsleep 4\ncp -r "${DICOMFLOW_INPUT_DIR:-/input}/." "${DICOMFLOW_OUTPUT_DIR:-/output}/"\n',
};
/** Production's smallest part: a study of a few tens of MB goes up as a multipart upload. */
const PART_SIZE = 5 * 1024 * 1024;
const SPOOL_SIZE_MB = 256;

let stack: E2eStack;
let work: string;
let spool: string;
let shim: string;
let image: string;
let rabbit: RabbitNode;
let postgres: PostgresCluster;
let minio: MinioProcess;
let engine: DockerEngine;
let destination: RunningProcess | undefined;
let destinationPort: number;
const savedDockerHost = process.env.DOCKER_HOST;

async function startDestination(): Promise<void> {
  destination = await startDcmtkStorescp({
    port: destinationPort,
    outDir: join(work, 'destination'),
    aeTitle: 'DEST',
    extraArgs: ['+uf'],
    env: { ...process.env, LD_PRELOAD: shim },
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'faults-infra-'));
  shim = await nodelayShimPath(work);
  spool = join(work, 'spool');
  await mkdir(spool);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SPOOL_SIZE_MB}m`, 'tmpfs', spool]);
  [rabbit, postgres, minio, engine] = await Promise.all([
    startRabbitNode(),
    startPostgresCluster(),
    startMinio(),
    startDockerEngine(),
  ]);
  // Every docker command of this file (the model image, the invariant's container check) goes to the
  // engine of its own.
  process.env.DOCKER_HOST = engine.host;
  image = await buildTestModelImage(SLOW_COPY_MODEL);
  destinationPort = await freePort();
  await startDestination();
  stack = await startE2eStack({
    separate: true,
    env: {
      RABBIT_HOSTNAME: '127.0.0.1',
      RABBIT_PORT: String(rabbit.port),
      DB_HOST: '127.0.0.1',
      DB_PORT: String(postgres.port),
      DB_NAME: postgres.database,
      DB_USER: 'postgres',
      DB_PASS: '',
      S3_ENDPOINT: '127.0.0.1',
      S3_PORT: String(minio.port),
      S3_USE_SSL: 'false',
      S3_ACCESS_KEY: minio.config.accessKey,
      S3_SECRET_KEY: minio.config.secretKey,
      S3_PART_SIZE: String(PART_SIZE),
      DOCKER_HOST: engine.host,
      SPOOL_DIR: spool,
      SEND_RETRY_INITIAL_MS: '500',
      SEND_RETRY_MAX_MS: '5000',
      SEND_MAX_ATTEMPTS: '100',
    },
  });
}, 600_000);

afterAll(async () => {
  await stack.close();
  await destination?.stop();
  await Promise.all([rabbit.close(), postgres.close(), minio.close(), engine.close()]);
  if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = savedDockerHost;
  execFileSync('umount', [spool]);
  await rm(work, { recursive: true, force: true });
}, 300_000);

/** Writes the case's flow and sends its study; `fault` runs while the study is in the suite. */
async function runCase(
  name: string,
  instances: number,
  rows: number,
  fault: (flow: string, sending: Promise<SentStudy>) => Promise<void>,
): Promise<void> {
  const flow = `${name}.yaml`;
  const patientId = `FAULT-${name.toUpperCase()}`;
  await stack.writeFlow(flow, {
    name,
    triggers: [{ PatientID: `^${patientId}$` }],
    models: [{ docker_kwargs: { image }, timeout: 600 }],
    destinations: [{ host: '127.0.0.1', port: destinationPort, ae_title: 'DEST' }],
  });
  const study = await makeStudy(join(work, name), patientId, instances, rows);
  const sending = sendStudy(stack, study, patientId, { ...process.env, LD_PRELOAD: shim });
  await fault(flow, sending);
  const sent = await sending;
  expect(sent.result.code, sent.result.stderr).toBe(0);
  expect(sent.accepted.size).toBe(instances);
  await everyServiceReady(stack);
  const report = await checkInvariant({
    stack,
    flow,
    study: sent,
    destinationDir: join(work, 'destination'),
    rabbitNode: rabbit.node,
    timeoutMs: 300_000,
  });
  expectInvariant(report, stack);
}

describe('the parts the suite stands on fail mid-run', () => {
  it('RabbitMQ restarted while the model runs', async () => {
    await runCase('rabbit-restart', 50, 64, async (flow) => {
      await modelRunning(stack, flow);
      await rabbit.stop();
      await sleep(5_000);
      await rabbit.start();
    });
  });

  it('PostgreSQL stopped for 30 s while the model runs', async () => {
    await runCase('postgres-stop', 50, 64, async (flow) => {
      await modelRunning(stack, flow);
      await postgres.stop();
      await sleep(30_000);
      await postgres.start();
    });
  });

  it('MinIO stopped for 30 s in the middle of a multipart upload', async () => {
    // 300 instances of 256x256: a 40 MB receipt, eight parts.
    await runCase('minio-stop', 300, 256, async () => {
      await associationEnded(stack);
      await minio.kill();
      await sleep(30_000);
      await minio.restart();
    });
  });

  it('the destination down for 60 s', async () => {
    await runCase('destination-down', 50, 64, async (flow) => {
      await modelRunning(stack, flow);
      await destination?.stop();
      await sleep(60_000);
      await startDestination();
    });
  });

  it('the Docker engine restarted while the model runs', async () => {
    await runCase('engine-restart', 50, 64, async (flow) => {
      await modelRunning(stack, flow);
      await engine.stop();
      await sleep(5_000);
      await engine.start();
    });
  });

  it("the spool's disk full: out of resources (0xA7xx), then accepted again", async () => {
    const filler = join(spool, 'filler');
    // Fill the spool's file system to the last byte.
    await writeFile(filler, '');
    execFileSync('sh', ['-c', `dd if=/dev/zero of=${filler} bs=1M 2>/dev/null || true`]);
    const patientId = 'FAULT-DISK-FULL';
    await stack.writeFlow('disk-full.yaml', {
      name: 'disk-full',
      triggers: [{ PatientID: `^${patientId}$` }],
      models: [{ docker_kwargs: { image }, timeout: 600 }],
      destinations: [{ host: '127.0.0.1', port: destinationPort, ae_title: 'DEST' }],
    });
    const study = await makeStudy(join(work, 'disk-full'), patientId, 20, 64);
    const refused = await sendStudy(stack, study, patientId, { ...process.env, LD_PRELOAD: shim });
    expect(refused.accepted.size).toBe(0);
    // dcmtk names 0xA7xx "Refused: OutOfResources": one per instance.
    const answers = `${refused.result.stdout}${refused.result.stderr}`.match(/Refused: OutOfResources/g);
    expect(answers).toHaveLength(20);
    // storescp keeps running and answers.
    expect((await fetch(`${stack.urls.storescp}/healthz`)).status).toBe(200);

    await rm(filler);
    const sent = await sendStudy(stack, study, patientId, { ...process.env, LD_PRELOAD: shim });
    expect(sent.accepted.size).toBe(20);
    await everyServiceReady(stack);
    const report = await checkInvariant({
      stack,
      flow: 'disk-full.yaml',
      study: sent,
      destinationDir: join(work, 'destination'),
      rabbitNode: rabbit.node,
    });
    expectInvariant(report, stack);
  });
});

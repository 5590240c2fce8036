// Fault injection (issue 16): kill -9 of each of the seven services in turn, at a moment it holds work,
// while a study goes through the whole suite (dcmtk storescu -> our receiver -> a model container on the
// Docker engine -> a dcmtk destination, over RabbitMQ, PostgreSQL and MinIO). The only manual step is what
// a supervisor does: start the killed process again. Then the invariant (support/invariant.ts) must hold.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestModelImage,
  nodelayShimPath,
  startDcmtkStorescp,
  freePort,
  waitFor,
  type RunningProcess,
} from '@dicomflow/test-helpers';
import { startE2eStack, type E2eStack } from '../e2e/support/e2e-stack.js';
import { checkInvariant, expectInvariant } from './support/invariant.js';
import { associationEnded, everyServiceReady, modelRunning } from './support/moments.js';
import { makeStudy, sendStudy } from './support/study.js';

/** A model that takes a few seconds, so that a kill can land while it runs. */
const SLOW_COPY_MODEL = {
  name: 'slow-copy-model',
  script: 'set -e\nsleep 4\ncp -r "${DICOMFLOW_INPUT_DIR:-/input}/." "${DICOMFLOW_OUTPUT_DIR:-/output}/"\n',
};

let stack: E2eStack;
let work: string;
let shim: string;
let image: string;
let destination: RunningProcess;
let destinationPort: number;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'faults-kill-'));
  shim = await nodelayShimPath(work);
  image = await buildTestModelImage(SLOW_COPY_MODEL);
  destinationPort = await freePort();
  destination = await startDcmtkStorescp({
    port: destinationPort,
    outDir: join(work, 'destination'),
    aeTitle: 'DEST',
    // Unique file names: an instance that arrives twice is two files, so repeats are counted.
    extraArgs: ['+uf'],
    env: { ...process.env, LD_PRELOAD: shim },
  });
  stack = await startE2eStack({
    separate: true,
    env: {
      // Quick retries, so that recovery is not a matter of backoff.
      SEND_RETRY_INITIAL_MS: '500',
      SEND_RETRY_MAX_MS: '2000',
    },
  });
}, 300_000);

afterAll(async () => {
  await stack.close();
  await destination.stop();
  await rm(work, { recursive: true, force: true });
});

/** Waits for `moment`, polling quickly, and returns once it came; throws when it never does. */
async function when(moment: () => Promise<boolean>, what: string): Promise<void> {
  await waitFor(moment, what, 120_000);
}

async function spoolFileCount(): Promise<number> {
  const entries = await readdir(stack.env.SPOOL_DIR ?? '', { recursive: true }).catch(() => []);
  return entries.length;
}

/** When each service is killed: a moment at which it holds work of the study. */
const MOMENTS: Record<string, (flow: string) => Promise<void>> = {
  // Mid-association: part of the study is in the spool, the rest not yet sent.
  storescp: () => when(async () => (await spoolFileCount()) >= 40, 'instances in the spool'),
  // The receipt is published as the association ends: the fingerprinter takes it at once.
  fingerprinter: () => associationEnded(stack),
  // The run was matched and is being planned and dispatched.
  scheduler: (flow) => when(async () => (await stack.runs(flow)).length > 0, 'a run matched'),
  // The model container runs.
  consumer: (flow) => modelRunning(stack, flow),
  // The results are on their way to the destination.
  sender: (flow) => when(async () => (await stack.runs(flow)).some((r) => r.status === 3), 'the run sending'),
  'flow-tracker': (flow) => modelRunning(stack, flow),
  'static-storage': (flow) => modelRunning(stack, flow),
};

describe('kill -9 of a service holding work', () => {
  for (const service of Object.keys(MOMENTS)) {
    it(`${service}: nothing accepted is lost`, async () => {
      const flow = `kill-${service}.yaml`;
      const patientId = `KILL-${service.toUpperCase()}`;
      await stack.writeFlow(flow, {
        name: `kill-${service}`,
        triggers: [{ PatientID: `^${patientId}$` }],
        models: [{ docker_kwargs: { image }, timeout: 600 }],
        destinations: [{ host: '127.0.0.1', port: destinationPort, ae_title: 'DEST' }],
      });
      const study = await makeStudy(join(work, service), patientId, 400, 96);
      const sending = sendStudy(stack, study, patientId, { ...process.env, LD_PRELOAD: shim });
      const moment = MOMENTS[service] as (flow: string) => Promise<void>;
      await moment(flow);
      await stack.kill(service);
      const sent = await sending;
      await stack.restart(service);
      await everyServiceReady(stack);

      // The receiver was killed mid-association: storescu saw the connection drop, and only what it got
      // a success for counts. Every other case sent the whole study.
      if (service === 'storescp') {
        expect(sent.accepted.size).toBeGreaterThan(0);
        expect(sent.accepted.size).toBeLessThan(study.files.length);
      } else {
        expect(sent.result.code, sent.result.stderr).toBe(0);
        expect(sent.accepted.size).toBe(study.files.length);
      }
      const report = await checkInvariant({
        stack,
        flow,
        study: sent,
        destinationDir: join(work, 'destination'),
      });
      // A sender killed mid-send may send again what the destination acknowledged but the sender had not
      // yet recorded (DICOM allows it): the instance in flight plus the acks not yet written, which the
      // sender bounds (MAX_UNRECORDED_ACKS = 16: at most 15 wait while the next instance goes out).
      expectInvariant(report, stack, service === 'sender' ? 16 : 0);
      await everyServiceReady(stack);
    });
  }
});

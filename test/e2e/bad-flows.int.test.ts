// Bad flow files dropped into the flow folder while a study is on its way: a YAML bomb (billion laughs), a
// 10 MB file and a pattern that backtracks exponentially in a backtracking engine. Each is refused or runs
// in linear time, with a clear reason in the fingerprinter's /readyz, and the study in flight is delivered.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  buildTestModelImage,
  COPY_MODEL,
  generateCtSeries,
  newUid,
  nodelayShimPath,
  storescu,
  waitFor,
} from '@dicomflow/test-helpers';
import { startDestination, type DcmtkDestination } from './support/destination.js';
import { AE_TITLE, isDone, startE2eStack, type E2eStack, E2E_TEST_TIMEOUT_MS } from './support/e2e-stack.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

const INSTANCES = 20;
// 63 a's then '!': `^(a+)+$` fails on it only after trying every split of the a's in a backtracking engine.
const PATIENT_ID = `${'a'.repeat(63)}!`;

let stack: E2eStack;
let work: string;
let shim: string;
let destination: DcmtkDestination;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-bad-flows-'));
  shim = await nodelayShimPath(work);
  destination = await startDestination(work, shim);
  stack = await startE2eStack();
}, 240_000);

afterAll(async () => {
  await stack.close();
  await destination.process.stop();
  await rm(work, { recursive: true, force: true });
});

interface Report {
  readonly flows?: ReadonlyArray<{ file: string }>;
  readonly invalid?: ReadonlyArray<{ file: string; message?: string; reason?: string }>;
}

async function report(): Promise<Report> {
  const response = await fetch(`${stack.urls.fingerprinter}/readyz`);
  const body = (await response.json()) as { details?: Report };
  return body.details ?? {};
}

function billionLaughs(): string {
  const rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  const names = 'abcdefghij';
  for (let i = 1; i < names.length; i++) {
    const previous = `*${names[i - 1] ?? ''}`;
    rows.push(`${names[i] ?? ''}: &${names[i] ?? ''} [${Array(10).fill(previous).join(',')}]`);
  }
  rows.push('name: bomb', 'triggers: [{ Modality: "^CT$" }]', 'models: []');
  return `${rows.join('\n')}\n`;
}

describe('bad flow files while a study is in flight', () => {
  it('refuses or contains each with a reason, and the study is delivered', async () => {
    const copyImage = await buildTestModelImage(COPY_MODEL);
    await stack.writeFlow('good.yaml', {
      name: 'good',
      triggers: [{ PatientID: '^a+!$' }],
      models: [{ docker_kwargs: { image: copyImage }, timeout: 600 }],
      destinations: [{ host: '127.0.0.1', port: destination.port, ae_title: 'DEST' }],
    });
    const files = await generateCtSeries(join(work, 'source'), INSTANCES, {
      patientId: PATIENT_ID,
      studyInstanceUid: newUid(),
      rows: 16,
      columns: 16,
    });
    const sending = storescu({
      port: stack.aePort,
      calledAe: AE_TITLE,
      files,
      env: { ...process.env, LD_PRELOAD: shim },
    });
    // Dropped while the study is on its way.
    await writeFile(join(stack.flowsDir, 'bomb.yaml'), billionLaughs());
    await writeFile(join(stack.flowsDir, 'huge.yaml'), `name: huge\n# ${'x'.repeat(10 * 1024 * 1024)}\n`);
    await stack.writeFlow('backtracking.yaml', {
      name: 'backtracking',
      triggers: [{ PatientID: '^(a+)+$' }],
      models: [{ docker_kwargs: { image: copyImage }, timeout: 600 }],
      destinations: [{ host: '127.0.0.1', port: destination.port, ae_title: 'DEST' }],
    });
    const sent = await sending;
    expect(sent.code, sent.stderr).toBe(0);

    await waitFor(
      async () => {
        const invalid = (await report()).invalid ?? [];
        return ['bomb.yaml', 'huge.yaml'].every((file) => invalid.some((p) => p.file === file));
      },
      'both bad files reported',
      60_000,
    );
    const { invalid = [], flows = [] } = await report();
    const reasonOf = (file: string): string => JSON.stringify(invalid.filter((p) => p.file === file));
    expect(reasonOf('bomb.yaml')).toMatch(/alias/i);
    expect(reasonOf('huge.yaml')).toContain('a flow file is at most 1048576');
    expect(flows.map((flow) => flow.file).sort()).toEqual(['backtracking.yaml', 'good.yaml']);

    const [run] = await stack.waitForRuns('good', 1, isDone, 300_000);
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    expect(await readdir(destination.dir)).toHaveLength(INSTANCES);
    // The backtracking pattern was matched, in linear time, and does not match: no run of it.
    expect(await stack.runs('backtracking')).toEqual([]);
    const ready = await fetch(`${stack.urls.fingerprinter}/readyz`);
    expect(ready.status).toBe(200);
  });
});

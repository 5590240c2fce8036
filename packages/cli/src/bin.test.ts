import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MATCH_FLOWS, tempDir, writeFlows, writeStudy } from './testing/cli-fixtures.js';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

interface BinResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built `dicomflow` bin as a user would (`npm run build` first). */
async function dicomflow(...args: string[]): Promise<BinResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== 'number') throw err;
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

let dir: string;

beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build first`);
  dir = await tempDir();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the dicomflow bin', () => {
  it('validate: exit 1 and file:line: field: reason on stdout for an invalid flow', async () => {
    const flows = await writeFlows(join(dir, 'v'), {
      'gpu.yaml': 'models:\n  - docker_kwargs: { image: a }\n    gpu: 1\n',
    });
    expect(await dicomflow('validate', flows)).toEqual({
      code: 1,
      stdout: `${join(flows, 'gpu.yaml')}:3: models[0].gpu: must be true or false\n1 problem in 1 file; 0 valid flows\n`,
      stderr: '',
    });
  });

  it('validate: exit 0 for valid flows', async () => {
    const flows = await writeFlows(join(dir, 'ok'), MATCH_FLOWS);
    expect(await dicomflow('validate', flows)).toEqual({
      code: 0,
      stdout: 'OK: 4 valid flows\n',
      stderr: '',
    });
  });

  it('match: dry-runs the flows on real DICOM files', async () => {
    const study = await writeStudy(join(dir, 'm'));
    const flows = await writeFlows(join(dir, 'm'), MATCH_FLOWS);
    const result = await dicomflow('match', '--flows', flows, join(study, 'ct'), join(study, 'mr2'));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('ct.yaml (CT copy): TRIGGERED at priority 2, takes 3 of 4 files\n');
    expect(result.stdout).toContain('mr.yaml (MR): not triggered: triggers[0] matched no file\n');
    expect(result.stdout).toContain(
      `  excluded by ~ patterns: 1 file\n    ${join(study, 'mr2', '000001.dcm')}\n`,
    );
    expect(result.stderr).toBe('');
  });

  it('usage errors exit 2', async () => {
    const result = await dicomflow('match', 'x.dcm');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^dicomflow: match needs --flows <dir>\nUsage:/);
  });
});

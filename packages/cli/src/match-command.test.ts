import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, readDicomInputs, runCli } from './index.js';
import { captureOutput, MATCH_FLOWS, tempDir, writeFlows, writeStudy } from './testing/cli-fixtures.js';

let dir: string;
let study: string;
let flows: string;

beforeAll(async () => {
  dir = await tempDir();
  study = await writeStudy(dir);
  flows = await writeFlows(dir, { ...MATCH_FLOWS, 'broken.yaml': 'priority: 9\n' });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ct = (n: number): string => join(study, 'ct', `00000${n}.dcm`);
const mr = (series: number, n: number): string => join(study, `mr${series}`, `00000${n}.dcm`);

describe('readDicomInputs', () => {
  it('reads every DICOM file under a folder, in path order, and skips the rest with a reason', async () => {
    const { instances, skipped } = await readDicomInputs([study, join(study, 'nothing-here')]);
    expect(instances.map((instance) => instance.member)).toEqual([
      ct(1),
      ct(2),
      ct(3),
      mr(1, 1),
      mr(1, 2),
      mr(2, 1),
    ]);
    expect(instances[0]?.elements['00080060']).toEqual({ vr: 'CS', Value: ['CT'] });
    expect(skipped.map((input) => input.path)).toEqual([
      join(study, 'nothing-here'),
      join(study, 'README.txt'),
    ]);
  });
});

describe('runCli match', () => {
  it('prints per flow whether it triggers, which map failed and the files it would take', async () => {
    const output = captureOutput();
    const code = await runCli(['match', '--flows', flows, study], output);
    expect(output.stdout).toEqual([
      `6 DICOM files, 4 valid flows in ${flows}`,
      '',
      'ct-and-pt.yaml: not triggered: triggers[1] matched no file',
      '  triggers[0] {Modality: "CT"}: 3 files',
      '  triggers[1] {Modality: "PT"}: no file',
      '',
      'ct.yaml (CT copy): TRIGGERED at priority 2, takes 3 of 6 files',
      '  triggers[0] {Modality: "CT"}: 3 files',
      '  would take:',
      `    ${ct(1)}`,
      `    ${ct(2)}`,
      `    ${ct(3)}`,
      '',
      'mr.yaml (MR): TRIGGERED at priority 0, takes 2 of 6 files',
      '  triggers[0] {Modality: "MR", SeriesNumber: "~^2$"}: 2 files',
      '  excluded by ~ patterns: 1 file',
      `    ${mr(2, 1)}`,
      '  would take:',
      `    ${mr(1, 1)}`,
      `    ${mr(1, 2)}`,
      '',
      'no-triggers.yaml (idle): not triggered: the flow has no triggers, and a flow without triggers never runs',
    ]);
    expect(output.stderr).toEqual([
      `invalid flow, skipped: ${join(flows, 'broken.yaml')}:1: priority: must be <= 5`,
      `not a usable DICOM file, skipped: ${join(study, 'README.txt')}: not a DICOM Part-10 file (no DICM prefix)`,
    ]);
    expect(code).toBe(ExitCode.problems);
  });

  it('takes single files as the group', async () => {
    const output = captureOutput();
    const code = await runCli(
      ['match', '--flows', await writeFlows(join(dir, 'one'), MATCH_FLOWS), mr(2, 1)],
      output,
    );
    expect(code).toBe(ExitCode.ok);
    expect(output.stdout).toContain('mr.yaml (MR): not triggered: triggers[0] matched no file');
    expect(output.stdout).toContain('ct.yaml (CT copy): not triggered: triggers[0] matched no file');
  });

  it('exits 2 when there is no DICOM file to match', async () => {
    const output = captureOutput();
    expect(await runCli(['match', '--flows', flows, join(study, 'README.txt')], output)).toBe(ExitCode.usage);
    expect(output.stderr.at(-1)).toBe('no DICOM files to match');
  });
});

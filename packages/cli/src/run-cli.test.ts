import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, runCli, USAGE } from './index.js';
import { captureOutput, tempDir, writeFlows } from './testing/cli-fixtures.js';

let dir: string;

beforeAll(async () => {
  dir = await tempDir();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runCli: arguments', () => {
  it('prints the usage on help', async () => {
    const output = captureOutput();
    expect(await runCli(['help'], output)).toBe(ExitCode.ok);
    expect(output.stdout).toEqual([USAGE]);
  });

  it.each<[string, string[], string]>([
    ['no command', [], 'dicomflow: no command given'],
    ['an unknown command', ['frobnicate'], 'dicomflow: unknown command: frobnicate'],
    ['validate without paths', ['validate'], 'dicomflow: validate needs at least one folder or file'],
    ['match without --flows', ['match', 'x.dcm'], 'dicomflow: match needs --flows <dir>'],
    [
      'match without files',
      ['match', '--flows', 'flows'],
      'dicomflow: match needs at least one DICOM file or folder',
    ],
    ['an unknown option', ['validate', '--fix', 'a.yaml'], "dicomflow: Unknown option '--fix'"],
  ])('refuses %s with exit code 2 and the usage', async (_name, args, message) => {
    const output = captureOutput();
    expect(await runCli(args, output)).toBe(ExitCode.usage);
    expect(output.stderr[0]).toMatch(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(output.stderr.at(-1)).toBe(USAGE);
    expect(output.stdout).toEqual([]);
  });
});

describe('runCli validate', () => {
  it('says OK and exits 0 when every flow is valid', async () => {
    const flows = await writeFlows(join(dir, 'ok'), {
      'a.yaml': 'triggers: [{Modality: CT}]\n',
      'b.yml': 'name: b\n',
    });
    const output = captureOutput();
    expect(await runCli(['validate', flows], output)).toBe(ExitCode.ok);
    expect(output.stdout).toEqual(['OK: 2 valid flows']);
  });

  it('prints each problem as file:line: field: reason and exits 1', async () => {
    const flows = await writeFlows(join(dir, 'bad'), {
      'a.yaml': 'triggers: [{Modality: CT}]\n',
      'b.yaml': 'name: b\nmodels:\n  - docker_kwargs:\n      image: x\n      binds: ["/:/host"]\n',
      'c.yaml': 'triggers:\n  - SeriesDescription: "(unclosed"\n    Modality: CT\n',
    });
    const single = join(flows, 'a.yaml');
    const output = captureOutput();
    expect(await runCli(['validate', flows, single, join(dir, 'missing.yaml')], output)).toBe(
      ExitCode.problems,
    );
    expect(output.stdout).toEqual([
      `${join(flows, 'b.yaml')}:5: models[0].docker_kwargs.binds: is not allowed: host paths are never mounted: the consumer mounts /input, /output and static_mounts itself`,
      `${join(flows, 'c.yaml')}:2: triggers[0].SeriesDescription: is not a valid regular expression (missing closing ): \`(unclosed\`)`,
      `${join(dir, 'missing.yaml')}:1: (file): cannot be read: no such file or directory`,
      '3 problems in 3 files; 2 valid flows',
    ]);
  });

  it('says so when a folder holds no flow files', async () => {
    const output = captureOutput();
    expect(await runCli(['validate', await writeFlows(join(dir, 'empty'), {})], output)).toBe(ExitCode.ok);
    expect(output.stdout).toEqual(['OK: no flow files found (*.yaml, *.yml)']);
  });
});

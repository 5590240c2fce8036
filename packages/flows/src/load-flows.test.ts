import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatProblem, hashFlow, loadFlowDirectory, loadFlowFile } from './index.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dicomflow-flows-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CT_FLOW = 'name: ct\ntriggers:\n  - Modality: CT\nmodels:\n  - docker_kwargs: { image: busybox }\n';

describe('loadFlowFile', () => {
  it('returns the flow, its file and its hash', async () => {
    const file = join(dir, 'ct.yaml');
    await writeFile(file, CT_FLOW);
    const result = await loadFlowFile(file);
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    expect(result.file).toBe(file);
    expect(result.flow.name).toBe('ct');
    expect(result.hash).toBe(hashFlow(result.flow));
  });

  it('reports a file that does not exist', async () => {
    const file = join(dir, 'gone.yaml');
    expect(await loadFlowFile(file)).toEqual({
      ok: false,
      problems: [{ file, line: 1, field: '(file)', reason: 'cannot be read: no such file or directory' }],
    });
  });

  it('reports a file far too big to be a flow', async () => {
    const file = join(dir, 'huge.yaml');
    await writeFile(file, `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
    const result = await loadFlowFile(file);
    expect(result.ok ? [] : result.problems.map((p) => p.reason)).toEqual([
      expect.stringMatching(/^is 2097155 bytes; a flow file is at most 1048576$/) as string,
    ]);
  });
});

describe('loadFlowDirectory', () => {
  it('loads the valid flows and reports each invalid file, one file at a time', async () => {
    await writeFile(join(dir, 'b-ct.yaml'), CT_FLOW);
    await writeFile(join(dir, 'a-mr.yml'), 'name: mr\ntriggers:\n  - Modality: MR\n');
    await writeFile(join(dir, 'c-broken.yaml'), 'name: broken\npriority: 9\n');
    await writeFile(join(dir, 'd-syntax.YAML'), 'name: [\n');
    await writeFile(join(dir, 'notes.txt'), 'not a flow');
    await writeFile(join(dir, '.e-hidden.yaml'), 'priority: 9\n');
    await mkdir(join(dir, 'sub.yaml'));
    await writeFile(join(dir, 'sub.yaml', 'nested.yaml'), 'priority: 9\n');

    const { flows, problems } = await loadFlowDirectory(dir);

    expect(flows.map((flow) => [flow.file, flow.flow.name])).toEqual([
      [join(dir, 'a-mr.yml'), 'mr'],
      [join(dir, 'b-ct.yaml'), 'ct'],
    ]);
    expect(problems.map(formatProblem)).toEqual([
      `${join(dir, 'c-broken.yaml')}:2: priority: must be <= 5`,
      expect.stringMatching(/^.*d-syntax\.YAML:\d+: \(yaml\): /) as string,
    ]);
  });

  it('reports a directory that does not exist', async () => {
    const missing = join(dir, 'missing');
    expect(await loadFlowDirectory(missing)).toEqual({
      flows: [],
      problems: [
        {
          file: missing,
          line: 1,
          field: '(file)',
          reason: 'flow directory cannot be read: no such file or directory',
        },
      ],
    });
  });

  it('holds no flows when the directory is empty', async () => {
    expect(await loadFlowDirectory(dir)).toEqual({ flows: [], problems: [] });
  });
});

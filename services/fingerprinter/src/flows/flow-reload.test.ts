import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '@dicomflow/runtime';
import { waitFor } from '@dicomflow/test-helpers';
import { DirectoryWatcher } from '@dicomflow/runtime';
import { FlowCatalog } from './flow-catalog.js';
import { reportOf, type FlowSnapshot } from './flow-snapshot.js';

const flowYaml = (modality: string, priority = 0): string =>
  `name: ${modality} flow\npriority: ${priority}\ntriggers:\n  - Modality: ^${modality}$\n`;

let root: string;
let dir: string;
let logs: Record<string, unknown>[];
let catalog: FlowCatalog;
let watcher: DirectoryWatcher;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'fingerprinter-flows-'));
  dir = join(root, 'flows');
  await mkdir(dir);
  logs = [];
  const logger = createLogger({
    service: 'test',
    level: 'info',
    destination: {
      write(line: string) {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  });
  catalog = new FlowCatalog(dir, logger);
  watcher = new DirectoryWatcher(dir, () => void catalog.reload(), logger, { debounceMs: 50, rescanMs: 300 });
});

afterEach(async () => {
  watcher.close();
  await rm(root, { recursive: true, force: true });
});

/** Files of the valid flows with their priority, and files with problems. */
function state(snapshot: FlowSnapshot): { flows: Record<string, number>; invalid: string[] } {
  const report = reportOf(dir, snapshot);
  return {
    flows: Object.fromEntries(report.flows.map((flow) => [flow.file, flow.priority])),
    invalid: [...new Set(report.invalid.map((problem) => problem.file))],
  };
}

async function expectState(expected: { flows: Record<string, number>; invalid: string[] }): Promise<void> {
  await waitFor(
    () => JSON.stringify(state(catalog.snapshot())) === JSON.stringify(expected),
    `flows ${JSON.stringify(expected)}, have ${JSON.stringify(state(catalog.snapshot()))}`,
  );
}

describe('flow directory reload', () => {
  it('follows files added, changed, broken, fixed, replaced by rename and deleted', async () => {
    await writeFile(join(dir, 'a.yaml'), flowYaml('CT'));
    await writeFile(join(dir, 'broken.yaml'), 'name: [unclosed\n');
    await writeFile(join(dir, 'notes.txt'), 'not a flow');
    await watcher.start();
    const first = await catalog.reload();
    expect(state(first)).toEqual({ flows: { 'a.yaml': 0 }, invalid: ['broken.yaml'] });
    expect(first.problems[0]).toMatchObject({ line: expect.any(Number) as number, field: '(yaml)' });

    await writeFile(join(dir, 'b.yaml'), flowYaml('MR', 2));
    await expectState({ flows: { 'a.yaml': 0, 'b.yaml': 2 }, invalid: ['broken.yaml'] });

    await writeFile(join(dir, 'a.yaml'), flowYaml('CT', 4));
    await expectState({ flows: { 'a.yaml': 4, 'b.yaml': 2 }, invalid: ['broken.yaml'] });

    // Broken by an edit: reported, and its last valid version (priority 2) keeps running.
    await writeFile(join(dir, 'b.yaml'), 'triggers:\n  - Modality: "^(MR"\n');
    await expectState({ flows: { 'a.yaml': 4, 'b.yaml': 2 }, invalid: ['b.yaml', 'broken.yaml'] });
    const report = reportOf(dir, catalog.snapshot());
    expect(report.flows.find((flow) => flow.file === 'b.yaml')).toMatchObject({ lastValidVersion: true });
    expect(report.flows.find((flow) => flow.file === 'a.yaml')).not.toHaveProperty('lastValidVersion');
    const problem = report.invalid.find((p) => p.file === 'b.yaml');
    expect(problem).toMatchObject({ file: 'b.yaml', line: 2, field: 'triggers[0].Modality' });
    expect(problem?.reason).toMatch(/regex|regular expression|pattern/i);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        file: 'b.yaml',
        line: 2,
        field: 'triggers[0].Modality',
        msg: 'flow file became invalid; its last valid version keeps running',
      }),
    );
    // Still broken, differently: still the last valid version, not the broken one.
    await writeFile(join(dir, 'b.yaml'), 'priority: 9\n');
    await waitFor(
      () => catalog.snapshot().problems.some((p) => p.file.endsWith('b.yaml') && p.field === 'priority'),
      'the new problem of b.yaml',
    );
    expect(state(catalog.snapshot())).toEqual({
      flows: { 'a.yaml': 4, 'b.yaml': 2 },
      invalid: ['b.yaml', 'broken.yaml'],
    });

    await writeFile(join(dir, 'b.yaml'), flowYaml('MR', 1));
    await expectState({ flows: { 'a.yaml': 4, 'b.yaml': 1 }, invalid: ['broken.yaml'] });

    // How vim, VS Code and others save: write a temporary file, then rename it over the original.
    await writeFile(join(dir, '.a.yaml.swp'), flowYaml('CT', 5));
    await rename(join(dir, '.a.yaml.swp'), join(dir, 'a.yaml'));
    await expectState({ flows: { 'a.yaml': 5, 'b.yaml': 1 }, invalid: ['broken.yaml'] });

    await unlink(join(dir, 'b.yaml'));
    await unlink(join(dir, 'broken.yaml'));
    await expectState({ flows: { 'a.yaml': 5 }, invalid: [] });
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'flow removed', file: 'b.yaml' }));

    // A broken file that is then deleted takes its last valid version with it.
    await writeFile(join(dir, 'a.yaml'), 'name: [unclosed\n');
    await expectState({ flows: { 'a.yaml': 5 }, invalid: ['a.yaml'] });
    await unlink(join(dir, 'a.yaml'));
    await expectState({ flows: {}, invalid: [] });
    expect(catalog.snapshot().retained).toEqual([]);
  });

  it('reports a missing directory and picks the flows up once it exists again', async () => {
    await writeFile(join(dir, 'a.yaml'), flowYaml('CT'));
    await watcher.start();
    await catalog.reload();
    await rm(dir, { recursive: true });
    await waitFor(() => catalog.snapshot().directoryError !== undefined, 'the directory error');
    expect(catalog.snapshot().flows).toEqual([]);

    await mkdir(dir);
    await writeFile(join(dir, 'c.yaml'), flowYaml('PT', 3));
    await expectState({ flows: { 'c.yaml': 3 }, invalid: [] });
    expect(catalog.snapshot().directoryError).toBeUndefined();
    // Watching the new directory, not only rescanning it.
    await writeFile(join(dir, 'd.yaml'), flowYaml('MR'));
    await expectState({ flows: { 'c.yaml': 3, 'd.yaml': 0 }, invalid: [] });
  });

  it('folds reloads asked for while one runs into one that starts after the last request', async () => {
    await writeFile(join(dir, 'a.yaml'), flowYaml('CT'));
    const first = catalog.reload();
    await writeFile(join(dir, 'b.yaml'), flowYaml('MR'));
    const second = catalog.reload();
    const third = catalog.reload();
    expect(third).toBe(second);
    const [, snapshot] = await Promise.all([first, second]);
    expect(state(snapshot)).toEqual({ flows: { 'a.yaml': 0, 'b.yaml': 0 }, invalid: [] });
    expect(snapshot.generation).toBe(2);
  });
});

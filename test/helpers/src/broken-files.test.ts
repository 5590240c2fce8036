import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { truncatedCopy, withMissingTag, withSopClass, type MissingTagKeyword } from './broken-files.js';
import { generateCtSeries } from './fixtures.js';
import { readFileMeta } from './part10-meta.js';
import { runCommand, runChecked } from './run-command.js';

const TAGS: Record<MissingTagKeyword, string> = {
  StudyInstanceUID: '0020,000d',
  SeriesInstanceUID: '0020,000e',
  SOPInstanceUID: '0008,0018',
  SOPClassUID: '0008,0016',
};

let work: string;
let source: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'helpers-broken-'));
  const [file] = await generateCtSeries(join(work, 'src'), 1, { rows: 64, columns: 64 });
  if (!file) throw new Error('no fixture');
  source = file;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('withMissingTag', () => {
  it.each(Object.keys(TAGS) as MissingTagKeyword[])(
    'drops %s from the dataset top level and keeps the meta group',
    async (keyword) => {
      const target = join(work, `missing-${keyword}.dcm`);
      await withMissingTag(source, target, keyword);
      const { stdout } = await runChecked('dcmdump', ['-q', '-Un', target]);
      const datasetLines = stdout.split('\n').filter((line) => !line.startsWith('(0002,'));
      // Top-level elements are printed unindented; nested ones are indented.
      expect(datasetLines.some((line) => line.startsWith(`(${TAGS[keyword]})`))).toBe(false);
      expect(datasetLines.some((line) => line.startsWith('(7fe0,0010)'))).toBe(true);
      const { datasetOffset: _a, ...before } = await readFileMeta(source);
      const { datasetOffset: _b, ...after } = await readFileMeta(target);
      expect(after).toEqual(before);
    },
  );
});

describe('truncatedCopy', () => {
  it('keeps exactly the first bytes, so the dataset stops mid-element', async () => {
    const target = join(work, 'truncated.dcm');
    await truncatedCopy(source, target, 3000);
    expect((await stat(target)).size).toBe(3000);
    const dump = await runCommand('dcmdump', [target]);
    expect(dump.code).not.toBe(0);
    expect(dump.stderr).toMatch(/premature end of stream|remaining bytes/i);
  });

  it('refuses to cut into the meta group', async () => {
    await expect(truncatedCopy(source, join(work, 'x.dcm'), 100)).rejects.toThrow(/meta group/);
  });
});

describe('withSopClass', () => {
  it('sets the SOP class in the meta group and the dataset', async () => {
    const target = join(work, 'private.dcm');
    const privateClass = '1.2.826.0.1.3680043.9.9999.1';
    await withSopClass(source, target, privateClass);
    expect((await readFileMeta(target)).sopClassUid).toBe(privateClass);
    const { stdout } = await runChecked('dcmdump', ['-q', '-Un', '+P', '0008,0016', target]);
    expect(stdout).toContain(`[${privateClass}]`);
  });
});

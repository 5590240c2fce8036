import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCtSeries } from './fixtures.js';
import { readFileMeta } from './part10-meta.js';
import { runChecked } from './run-command.js';
import { newUid } from './uid.js';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'helpers-fixtures-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Top-level (unindented) element values from a dcmdump listing. */
function topLevel(dump: string, tag: string): string | undefined {
  const line = dump.split('\n').find((l) => l.startsWith(`(${tag})`));
  return /\[([^\]]*)\]/.exec(line ?? '')?.[1] ?? /^\(\S+\) \S\S (\S+)/.exec(line ?? '')?.[1];
}

describe('newUid', () => {
  it('makes distinct 2.25 UIDs of at most 64 characters', () => {
    const uids = new Set(Array.from({ length: 100 }, () => newUid()));
    expect(uids.size).toBe(100);
    for (const uid of uids) {
      expect(uid).toMatch(/^2\.25\.(0|[1-9][0-9]*)$/);
      expect(uid.length).toBeLessThanOrEqual(64);
    }
  });
});

describe('generateCtSeries', () => {
  it('writes Part-10 files dcmdump reads, with the requested UIDs and one position per slice', async () => {
    const studyInstanceUid = newUid();
    const seriesInstanceUid = newUid();
    const files = await generateCtSeries(join(work, 'series'), 4, {
      studyInstanceUid,
      seriesInstanceUid,
      rows: 64,
      columns: 48,
      patientId: 'PID-42',
      seriesNumber: 7,
    });
    expect(files).toHaveLength(4);
    const dumps = await Promise.all(
      files.map(async (f) => (await runChecked('dcmdump', ['-Un', '-q', f])).stdout),
    );
    const sopInstanceUids = new Set<string | undefined>();
    const positions = new Set<string | undefined>();
    dumps.forEach((dump, i) => {
      expect(topLevel(dump, '0002,0010')).toBe('1.2.840.10008.1.2.1');
      expect(topLevel(dump, '0008,0016')).toBe('1.2.840.10008.5.1.4.1.1.2');
      expect(topLevel(dump, '0020,000d')).toBe(studyInstanceUid);
      expect(topLevel(dump, '0020,000e')).toBe(seriesInstanceUid);
      expect(topLevel(dump, '0010,0020')).toBe('PID-42');
      expect(topLevel(dump, '0020,0011')).toBe('7');
      expect(topLevel(dump, '0020,0013')).toBe(String(i + 1));
      expect(topLevel(dump, '0028,0010')).toBe('64');
      expect(topLevel(dump, '0028,0011')).toBe('48');
      expect(topLevel(dump, '0028,0100')).toBe('16');
      expect(topLevel(dump, '0028,0004')).toBe('MONOCHROME2');
      sopInstanceUids.add(topLevel(dump, '0008,0018'));
      positions.add(topLevel(dump, '0020,0032'));
    });
    expect(sopInstanceUids.size).toBe(4);
    expect(positions.size).toBe(4);
    const meta = await readFileMeta(files[0] ?? '');
    expect(meta.sopInstanceUid).toBe(topLevel(dumps[0] ?? '', '0008,0018'));
  });

  it('defaults to 512x512 16-bit slices whose pixel data is a pattern, not zeros', async () => {
    const [file] = await generateCtSeries(join(work, 'default'), 1);
    if (!file) throw new Error('no file');
    const bytes = await readFile(file);
    expect((await stat(file)).size).toBeGreaterThan(512 * 512 * 2);
    const pixels = bytes.subarray(bytes.length - 512 * 512 * 2);
    const distinct = new Set<number>();
    for (let i = 0; i < pixels.length; i += 2) distinct.add(pixels.readUInt16LE(i));
    expect(distinct.size).toBeGreaterThan(20);
  });
});

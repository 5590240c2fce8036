import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoscu, storescu } from './dcmtk-scu.js';
import { generateCtSeries } from './fixtures.js';
import { startOrthanc } from './orthanc-process.js';
import { readFileMeta } from './part10-meta.js';

let work: string;
let series: string[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'helpers-orthanc-'));
  series = await generateCtSeries(join(work, 'series'), 3, { rows: 32, columns: 32 });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('startOrthanc', () => {
  it('stores what it receives and lists it over REST; stop() removes its folder', async () => {
    const orthanc = await startOrthanc({ aeTitle: 'PACS' });
    try {
      const sent = await storescu({ port: orthanc.dicomPort, calledAe: 'PACS', files: series });
      expect(sent.code).toBe(0);
      const uids = await Promise.all(series.map(async (f) => (await readFileMeta(f)).sopInstanceUid));
      const stored = await orthanc.instances();
      expect(stored.map((i) => i.sopInstanceUid).sort()).toEqual(uids.sort());
      const [first] = stored;
      if (!first) throw new Error('nothing stored');
      expect((await orthanc.instanceFile(first.id)).toString('latin1', 128, 132)).toBe('DICM');
    } finally {
      await orthanc.stop();
    }
    expect(existsSync(orthanc.dir)).toBe(false);
  });

  it('accepts only known calling AE titles when allowAnyCaller is false', async () => {
    const orthanc = await startOrthanc({
      allowAnyCaller: false,
      modalities: { known: { aeTitle: 'KNOWN' } },
    });
    try {
      expect((await echoscu({ port: orthanc.dicomPort, callingAe: 'KNOWN', calledAe: 'ORTHANC' })).code).toBe(
        0,
      );
      expect(
        (await echoscu({ port: orthanc.dicomPort, callingAe: 'STRANGER', calledAe: 'ORTHANC' })).code,
      ).not.toBe(0);
    } finally {
      await orthanc.stop();
    }
  });
});

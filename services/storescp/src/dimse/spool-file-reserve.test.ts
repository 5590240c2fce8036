import { fstatSync, readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpoolFileReserve } from './spool-file-reserve.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('SpoolFileReserve', () => {
  let dir: string;
  let made: number;
  let reserve: SpoolFileReserve;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-reserve-'));
    made = 0;
    reserve = new SpoolFileReserve(() => join(dir, `${made++}.part`));
  });

  afterEach(async () => {
    reserve.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('has nothing to give until a spare was prepared', () => {
    expect(reserve.takeSpare()).toBeUndefined();
  });

  it('creates one empty spare file after the current events, and hands it out once', async () => {
    reserve.prepareSoon();
    reserve.prepareSoon();
    // Checked synchronously: an async readdir would itself let the scheduled creation run first.
    expect(readdirSync(dir)).toEqual([]); // not before the events already due
    await tick();
    expect(await readdir(dir)).toEqual(['0.part']);
    const spare = reserve.takeSpare();
    expect(spare?.path).toBe(join(dir, '0.part'));
    expect(spare && fstatSync(spare.fd).size).toBe(0);
    expect(reserve.takeSpare()).toBeUndefined();
  });

  it('removes an unused spare on close and reserves nothing afterwards', async () => {
    reserve.prepareSoon();
    await tick();
    reserve.close();
    expect(await readdir(dir)).toEqual([]);
    reserve.prepareSoon();
    await tick();
    expect(await readdir(dir)).toEqual([]);
    expect(reserve.takeSpare()).toBeUndefined();
  });

  it('leaves file creation to the caller when creating a spare fails', async () => {
    const broken = new SpoolFileReserve(() => join(dir, 'missing-folder', 'x.part'));
    broken.prepareSoon();
    await tick();
    expect(broken.takeSpare()).toBeUndefined();
    broken.close();
  });
});

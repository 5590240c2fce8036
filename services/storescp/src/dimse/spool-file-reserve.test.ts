import { fstatSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpoolFileReserve } from './spool-file-reserve.js';

/** The removal runs in the thread pool after close: wait for it, boundedly. */
async function waitUntilEmpty(dir: string): Promise<void> {
  for (let i = 0; i < 200 && (await readdir(dir)).length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  expect(await readdir(dir)).toEqual([]);
}

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

  it('creates `depth` empty spare files, and hands each out once', async () => {
    reserve.prepareSoon();
    reserve.prepareSoon();
    expect(reserve.takeSpare()).toBeUndefined(); // created in the thread pool, so not yet
    await reserve.settled();
    expect((await readdir(dir)).sort()).toEqual(['0.part', '1.part', '2.part']);
    const taken = [reserve.takeSpare(), reserve.takeSpare(), reserve.takeSpare()];
    expect(taken.map((spare) => spare?.path).sort()).toEqual(
      ['0.part', '1.part', '2.part'].map((f) => join(dir, f)),
    );
    for (const spare of taken) expect(spare && fstatSync(spare.fd).size).toBe(0);
    expect(reserve.takeSpare()).toBeUndefined();
    // Refilled after use, never beyond the depth.
    reserve.prepareSoon();
    await reserve.settled();
    expect(await readdir(dir)).toHaveLength(6);
  });

  it('removes an unused spare on close and reserves nothing afterwards', async () => {
    reserve.prepareSoon();
    await reserve.settled();
    reserve.close();
    await waitUntilEmpty(dir);
    reserve.prepareSoon();
    await reserve.settled();
    expect(await readdir(dir)).toEqual([]);
    expect(reserve.takeSpare()).toBeUndefined();
  });

  it('removes a spare that was still being created when the reserve closed', async () => {
    reserve.prepareSoon();
    reserve.close();
    await reserve.settled();
    await waitUntilEmpty(dir);
    expect(reserve.takeSpare()).toBeUndefined();
  });

  it('leaves file creation to the caller when creating a spare fails', async () => {
    const broken = new SpoolFileReserve(() => join(dir, 'missing-folder', 'x.part'));
    broken.prepareSoon();
    await broken.settled();
    expect(broken.takeSpare()).toBeUndefined();
    broken.close();
  });
});

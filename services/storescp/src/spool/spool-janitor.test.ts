import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createJanitorCounter, createLogger, type JanitorCounter } from '@dicomflow/runtime';
import { type GroupManifest, Spool } from './spool.js';
import { runJanitorOnce } from './spool-janitor.js';

/** The age the janitor runs with: seconds, as the issue asks. */
const AGE_SECONDS = 60;
const logger = createLogger({ service: 'spool-janitor-test', level: 'silent' });

function manifest(receiptId: string): GroupManifest {
  return {
    receiptId,
    grouping: 'study',
    key: `1.2.${receiptId}`,
    callingAeTitle: 'SCU',
    calledAeTitle: 'SCP',
    callingHost: '127.0.0.1',
    createdAt: new Date().toISOString(),
  };
}

/** Sets a file's or folder's modification time an hour back, past the age. */
async function age(path: string): Promise<void> {
  const anHourAgo = new Date(Date.now() - 3600_000);
  await utimes(path, anHourAgo, anHourAgo);
}

describe('the spool janitor', () => {
  let root: string;
  let spool: Spool;
  let counter: JanitorCounter;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'dicomflow-spool-janitor-'));
    spool = new Spool(join(root, 'spool'), false);
    counter = createJanitorCounter(new Registry());
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const run = (retention = AGE_SECONDS) => runJanitorOnce({ spool, retention, counter, logger });

  it('removes old leftovers and never an open group, a group waiting to be published, or a file in use', async () => {
    // A group left by the previous process: taken over at start, published later. Old, but in use.
    await spool.init();
    const recoveredDir = spool.groupDir('recovered');
    await mkdir(recoveredDir);
    await writeFile(join(recoveredDir, 'group.json'), JSON.stringify(manifest('recovered')));
    await spool.recover();
    await age(recoveredDir);
    // A group open now, with an instance being received for it.
    const openDir = await spool.createGroup(manifest('open'));
    const receiving = spool.newIncomingPath();
    await writeFile(receiving, 'half an instance');
    for (const path of [openDir, receiving]) await age(path);
    // Leftovers: a group whose removal failed, a half-created group, a file nobody discarded; one young.
    const published = spool.groupDir('published');
    await mkdir(published);
    await writeFile(join(published, 'x.dcm'), 'x');
    const halfCreated = `${spool.groupDir('half')}.new`;
    await mkdir(halfCreated);
    const stray = join(spool.incomingDir, 'stray.part');
    await writeFile(stray, 'y');
    for (const path of [published, halfCreated, stray]) await age(path);
    const young = spool.groupDir('young');
    await mkdir(young);

    expect(await run()).toEqual({ spool: 3 });

    expect((await readdir(spool.groupsDir)).sort()).toEqual(['open', 'recovered', 'young']);
    expect(await readdir(spool.incomingDir)).toEqual([receiving.slice(spool.incomingDir.length + 1)]);
    expect((await counter.get()).values).toEqual([
      expect.objectContaining({ labels: { kind: 'spool' }, value: 3 }),
    ]);

    // Once published and removed, or discarded, a path is no longer in use.
    await spool.discard(receiving);
    await spool.removeGroup(recoveredDir);
    expect(spool.inUse(receiving)).toBe(false);
    expect(spool.inUse(recoveredDir)).toBe(false);
  });

  it('does nothing before the start-up recovery, nor with an age of 0', async () => {
    await spool.init();
    const previous = spool.groupDir('from-before');
    await mkdir(previous);
    await age(previous);
    expect(await run()).toEqual({});
    await writeFile(join(previous, 'group.json'), JSON.stringify(manifest('from-before')));
    await spool.recover();
    const leftover = join(spool.groupsDir, 'leftover');
    await mkdir(leftover);
    await age(leftover);
    expect(await run(0)).toEqual({});
    expect((await readdir(spool.groupsDir)).sort()).toEqual(['from-before', 'leftover']);
  });
});

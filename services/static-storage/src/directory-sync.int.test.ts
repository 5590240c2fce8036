import { mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Of } from '@dicomflow/storage/testing';
import { waitFor } from '@dicomflow/test-helpers';
import {
  dropBucket,
  folderUploads,
  startStaticStorage,
  type RunningStaticStorage,
} from './testing/static-storage-harness.js';
import { writeRandomTar, writeTar } from './testing/tar-fixtures.js';
import type { StaticStorageOptions } from './service.js';

const TOKEN = 'sync-test-token';
let folder: string;
let running: RunningStaticStorage[];
let buckets: string[];

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), 'static-folder-'));
  running = [];
  buckets = [];
});

afterEach(async () => {
  for (const instance of running) await instance.stop();
  for (const bucket of new Set(buckets)) await dropBucket(bucket);
  await rm(folder, { recursive: true, force: true });
});

async function start(
  env: Record<string, string> = {},
  options: StaticStorageOptions = {},
): Promise<RunningStaticStorage> {
  const instance = await startStaticStorage(folder, { STATIC_UPLOAD_TOKEN: TOKEN, ...env }, options);
  running.push(instance);
  buckets.push(instance.bucket);
  return instance;
}

/** sha256 metadata and source of `<name>.tar` in the bucket, or undefined when it is not there. */
async function stored(instance: RunningStaticStorage, name: string) {
  const info = await instance.storage.stat(instance.bucket, `${name}.tar`);
  return info && { size: info.size, sha256: info.metadata.sha256, source: info.metadata.source };
}

describe('static-storage: folder sync', () => {
  it('uploads the tars of the folder at start with their sha256, and the bytes are the file', async () => {
    const a = await writeRandomTar(join(folder, 'model-a.tar'));
    const b = await writeRandomTar(join(folder, 'model_b-v1.2.tar'), 300_000);
    await writeFile(join(folder, 'README.txt'), 'not a tar name: ignored');

    const instance = await start();
    await waitFor(async () => (await stored(instance, 'model_b-v1.2')) !== undefined, 'the folder synced');
    await instance.service.syncNow();

    expect(await stored(instance, 'model-a')).toEqual({
      size: a.size,
      sha256: a.sha256,
      source: 'directory',
    });
    expect(await stored(instance, 'model_b-v1.2')).toEqual({
      size: b.size,
      sha256: b.sha256,
      source: 'directory',
    });
    expect(await sha256Of(await instance.storage.getStream(instance.bucket, 'model-a.tar'))).toBe(a.sha256);
    expect((await instance.storage.list(instance.bucket)).map((object) => object.key)).toEqual([
      'model-a.tar',
      'model_b-v1.2.tar',
    ]);
  });

  it('uploads a changed file again, a new file, and leaves identical ones alone (also after a restart)', async () => {
    await writeRandomTar(join(folder, 'steady.tar'));
    await writeRandomTar(join(folder, 'changing.tar'));
    const first = await start();
    await waitFor(() => folderUploads(first.logs) === 2, 'both files uploaded');

    // change one file (an editor-style replace: new inode by rename) and add one
    const changed = await writeRandomTar(join(folder, '.changing.tar.tmp'));
    await rename(changed.path, join(folder, 'changing.tar'));
    // Written under a hidden name and renamed, as the README asks: a sync never sees it half-written.
    const added = await writeRandomTar(join(folder, '.added.tar.tmp'));
    await rename(added.path, join(folder, 'added.tar'));
    await waitFor(
      async () =>
        (await stored(first, 'changing'))?.sha256 === changed.sha256 &&
        (await stored(first, 'added')) !== undefined,
      'the change and the new file synced',
    );
    await first.service.syncNow();
    expect(folderUploads(first.logs, 'steady')).toBe(1);
    expect(folderUploads(first.logs, 'changing')).toBe(2);
    expect(folderUploads(first.logs, 'added')).toBe(1);
    expect(await stored(first, 'added')).toEqual({
      size: added.size,
      sha256: added.sha256,
      source: 'directory',
    });

    // a rescan with nothing changed uploads nothing
    await first.service.syncNow();
    expect(folderUploads(first.logs)).toBe(4);

    // a new process on the same bucket compares with the sha256 in S3: nothing to upload
    await first.stop();
    running = [];
    const second = await start({ S3_BUCKET_STATIC: first.bucket });
    await second.service.syncNow();
    expect(folderUploads(second.logs)).toBe(0);
    const readyz = (await (await fetch(`${second.url}/readyz`)).json()) as {
      details: { lastSync: { files: number; unchanged: number; uploaded: string[] } };
    };
    expect(readyz.details.lastSync).toMatchObject({ files: 3, unchanged: 3, uploaded: [] });
  });

  it('removes what it uploaded when the file leaves the folder, never what came over HTTP', async () => {
    const doomed = await writeRandomTar(join(folder, 'doomed.tar'));
    const instance = await start();
    await waitFor(async () => (await stored(instance, 'doomed')) !== undefined, 'the folder synced');

    const manual = await writeRandomTar(join(tmpdir(), `manual-${Date.now()}.tar`));
    const put = await fetch(`${instance.url}/static/manual`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-tar' },
      body: await readFile(manual.path),
    });
    expect(put.status).toBe(201);
    await rm(manual.path);

    await unlink(doomed.path);
    await waitFor(async () => (await stored(instance, 'doomed')) === undefined, 'the removal synced');
    await instance.service.syncNow();
    expect(await stored(instance, 'manual')).toEqual({
      size: manual.size,
      sha256: manual.sha256,
      source: 'upload',
    });
  });

  it('leaves a file that was just written for a later sync, then uploads it', async () => {
    const instance = await start({}, { settleMs: 1500 });
    await instance.service.syncNow();
    const fresh = await writeRandomTar(join(folder, 'fresh.tar'));
    await instance.service.syncNow();
    expect(await stored(instance, 'fresh')).toBeUndefined();
    const readyz = (await (await fetch(`${instance.url}/readyz`)).json()) as {
      details: { lastSync: { skipped: { file: string; reason: string }[] } };
    };
    expect(readyz.details.lastSync.skipped).toEqual([
      { file: 'fresh.tar', reason: 'changed moments ago; syncing once it is settled' },
    ]);
    // No event comes any more: the sync it scheduled for itself uploads the file once it has settled.
    await waitFor(
      async () => (await stored(instance, 'fresh'))?.sha256 === fresh.sha256,
      'the settled file uploaded',
    );
  });

  it('skips files that are not tars or have bad names, reports them, and keeps the earlier version', async () => {
    const good = await writeTar(join(folder, 'kept.tar'), { 'a.txt': 'first version' });
    const instance = await start();
    await waitFor(async () => (await stored(instance, 'kept')) !== undefined, 'the folder synced');

    await writeFile(join(folder, 'kept.tar'), 'this is not a tar archive at all'.repeat(40));
    await writeFile(join(folder, 'bad name!.tar'), 'x');
    await instance.service.syncNow();
    await instance.service.syncNow();

    expect(await stored(instance, 'kept')).toEqual({
      size: good.size,
      sha256: good.sha256,
      source: 'directory',
    });
    const readyz = (await (await fetch(`${instance.url}/readyz`)).json()) as {
      status: string;
      details: { lastSync: { skipped: { file: string; reason: string }[] } };
    };
    expect(readyz.status).toBe('ready');
    expect(readyz.details.lastSync.skipped).toEqual([
      { file: 'bad name!.tar', reason: expect.stringMatching(/not a valid name/) as string },
      { file: 'kept.tar', reason: expect.stringMatching(/not a tar archive/) as string },
    ]);
  });
});

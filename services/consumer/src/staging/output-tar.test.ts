import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import tar from 'tar-stream';
import { filesOf } from '../testing/fixtures.js';
import { asNodeStream } from './input-tar.js';
import { repackChecked } from './output-tar.js';

type Entry = {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo';
  body?: string;
  linkname?: string;
};

function archive(entries: readonly Entry[]) {
  const pack = tar.pack();
  for (const entry of entries) {
    if (entry.type === undefined || entry.type === 'file') pack.entry({ name: entry.name }, entry.body ?? '');
    else
      pack.entry({
        name: entry.name,
        type: entry.type,
        ...(entry.linkname ? { linkname: entry.linkname } : {}),
      });
  }
  pack.finalize();
  return asNodeStream(pack);
}

describe('repackChecked (what a model may hand on)', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'output-test-'));
    file = join(dir, 'out.tar');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps files and folders, relative to the output folder', async () => {
    const counts = await repackChecked(
      archive([
        { name: 'output/', type: 'directory' },
        { name: 'output/a/', type: 'directory' },
        { name: 'output/a/b.txt', body: 'bee' },
      ]),
      createWriteStream(file),
      100,
    );
    expect(counts).toEqual({ files: 1, bytes: 3, tarBytes: (await readFile(file)).length });
    expect(new Map([...(await filesOf(await readFile(file)))].map(([n, b]) => [n, b.toString()]))).toEqual(
      new Map([['a/b.txt', 'bee']]),
    );
  });

  it.each<[string, Entry, RegExp]>([
    ['a ../ entry', { name: 'output/../etc/evil', body: 'x' }, /contains "\.\."/],
    ['an absolute entry', { name: '/etc/evil', body: 'x' }, /absolute path/],
    ['a symbolic link', { name: 'output/link', type: 'symlink', linkname: '/etc/passwd' }, /is a symlink/],
    ['a hard link', { name: 'output/hard', type: 'link', linkname: 'output/a' }, /is a link/],
    ['a fifo', { name: 'output/pipe', type: 'fifo' }, /is a fifo/],
  ])('refuses %s (reason output)', async (_what, entry, message) => {
    await expect(
      repackChecked(archive([{ name: 'output/', type: 'directory' }, entry]), createWriteStream(file), 100),
    ).rejects.toMatchObject({
      name: 'JobFailure',
      reason: 'output',
      message: expect.stringMatching(message) as unknown,
    });
  });

  it('refuses an output larger than the limit', async () => {
    await expect(
      repackChecked(
        archive([
          { name: 'output/a', body: 'x'.repeat(60) },
          { name: 'output/b', body: 'y'.repeat(60) },
        ]),
        createWriteStream(file),
        100,
      ),
    ).rejects.toMatchObject({
      reason: 'output',
      message: 'the output is larger than the limit of 100 bytes',
    });
  });
});

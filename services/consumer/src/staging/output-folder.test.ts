import { execFileSync } from 'node:child_process';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { filesOf } from '../testing/fixtures.js';
import { JobFailure } from '../jobs/job-failure.js';
import { inputEntryPath } from './input-folder.js';
import { outputTarSize, outputTarStream, scanOutputFolder } from './output-folder.js';

async function tarBytes(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        parts.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(parts);
}

describe('output folder: scan, exact tar size, stream', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'consumer-output-folder-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('tars files and folders in name order with exactly the size computed first', async () => {
    const long = `${'d'.repeat(90)}/${'e'.repeat(90)}/${'f'.repeat(99)}.txt`;
    const tooLong = `${'g'.repeat(120)}.txt`;
    const unicode = 'séries/ü.dcm';
    const longFolder = `${'h'.repeat(160)}/`;
    const exactly100 = 'i'.repeat(100);
    await mkdir(join(dir, 'a/b'), { recursive: true });
    await mkdir(join(dir, 'd'.repeat(90), 'e'.repeat(90)), { recursive: true });
    await mkdir(join(dir, 'séries'));
    await mkdir(join(dir, 'empty'));
    await mkdir(join(dir, longFolder));
    await writeFile(join(dir, longFolder, 'in-long.txt'), 'deep');
    await writeFile(join(dir, exactly100), '100');
    await writeFile(join(dir, 'a/b/one.txt'), 'one');
    await writeFile(join(dir, 'a/zero.txt'), '');
    await writeFile(join(dir, long), 'long name');
    await writeFile(join(dir, tooLong), 'pax name');
    await writeFile(join(dir, unicode), Buffer.alloc(1500, 7));
    // A second hard link is an ordinary file to the consumer.
    await link(join(dir, 'a/b/one.txt'), join(dir, 'a/hard.txt'));

    const scanned = await scanOutputFolder(dir, 1_000_000);
    expect(scanned.entries.map((e) => e.name)).toEqual([
      'a/',
      'a/b/',
      'a/b/one.txt',
      'a/hard.txt',
      'a/zero.txt',
      `${'d'.repeat(90)}/`,
      `${'d'.repeat(90)}/${'e'.repeat(90)}/`,
      long,
      'empty/',
      tooLong,
      longFolder,
      `${longFolder}in-long.txt`,
      exactly100,
      'séries/',
      unicode,
    ]);
    expect(scanned.files).toBe(8);
    expect(scanned.bytes).toBe(3 + 3 + 0 + 9 + 8 + 4 + 3 + 1500);

    const size = outputTarSize(scanned.entries);
    const bytes = await tarBytes(outputTarStream(scanned.entries).stream);
    expect(bytes.length).toBe(size);
    const files = await filesOf(bytes);
    expect(files.get('a/b/one.txt')?.toString()).toBe('one');
    expect(files.get('a/hard.txt')?.toString()).toBe('one');
    expect(files.get(long)?.toString()).toBe('long name');
    expect(files.get(tooLong)?.toString()).toBe('pax name');
    expect(files.get(unicode)?.length).toBe(1500);
    expect(files.get(`${longFolder}in-long.txt`)?.toString()).toBe('deep');
    expect(files.get(exactly100)?.toString()).toBe('100');
    // GNU tar reads it too, every name and folder as scanned, without a warning.
    const listed = execFileSync('tar', ['-t'], { input: bytes }).toString().split('\n').filter(Boolean);
    expect(listed).toEqual(scanned.entries.map((e) => e.name));
  });

  it('stores an empty folder as an empty tar', async () => {
    const scanned = await scanOutputFolder(dir, 10);
    expect(outputTarSize(scanned.entries)).toBe(1024);
    expect((await tarBytes(outputTarStream(scanned.entries).stream)).length).toBe(1024);
  });

  it('refuses more files and folders than MAX_OUTPUT_ENTRIES, empty ones included', async () => {
    await mkdir(join(dir, 'a'));
    await writeFile(join(dir, 'a/empty'), '');
    await writeFile(join(dir, 'b'), '');
    expect((await scanOutputFolder(dir, 10, 3)).entries).toHaveLength(3);
    await writeFile(join(dir, 'c'), '');
    await expect(scanOutputFolder(dir, 10, 3)).rejects.toMatchObject({
      reason: 'output',
      message: 'the output holds more than 3 files and folders (MAX_OUTPUT_ENTRIES)',
    });
  });

  it('walks more entries than it looks at between two turns of the event loop, in name order', async () => {
    const names = Array.from({ length: 1500 }, (_, i) => `f${String(i).padStart(4, '0')}`);
    await mkdir(join(dir, 'sub'));
    for (const name of names) await writeFile(join(dir, 'sub', name), name);
    let turned = false;
    setImmediate(() => {
      turned = true;
    });
    const scanned = await scanOutputFolder(dir, 1_000_000);
    expect(scanned.entries.map((entry) => entry.name)).toEqual([
      'sub/',
      ...names.map((name) => `sub/${name}`),
    ]);
    expect(scanned).toMatchObject({ files: 1500, bytes: 1500 * 5 });
    // The event loop turned meanwhile: a walk of MAX_OUTPUT_ENTRIES does not hold it all along.
    expect(turned).toBe(true);
  });

  it('refuses a symlink, naming it, and never follows it', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'real.txt'), 'x');
    await symlink('/etc', join(dir, 'sub/link'));
    await expect(scanOutputFolder(dir, 100)).rejects.toThrow(
      new JobFailure('output', 'output entry "sub/link" is a symlink, not a regular file or folder'),
    );
  });

  it('refuses a fifo', async () => {
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    await expect(scanOutputFolder(dir, 100)).rejects.toMatchObject({
      reason: 'output',
      message: 'output entry "pipe" is a fifo, not a regular file or folder',
    });
  });

  it('refuses an output over the limit', async () => {
    await writeFile(join(dir, 'a.bin'), Buffer.alloc(60));
    await writeFile(join(dir, 'b.bin'), Buffer.alloc(60));
    await expect(scanOutputFolder(dir, 100)).rejects.toMatchObject({
      reason: 'output',
      message: 'the output is larger than the limit of 100 bytes',
    });
  });

  it('fails the stream with reason output when a file shrank after the scan', async () => {
    await writeFile(join(dir, 'a.bin'), Buffer.alloc(5000));
    const scanned = await scanOutputFolder(dir, 10_000);
    await writeFile(join(dir, 'a.bin'), Buffer.alloc(10));
    const { stream, failure } = outputTarStream(scanned.entries);
    await expect(tarBytes(stream)).rejects.toThrow();
    expect(failure()).toMatchObject({ reason: 'output' });
  });
});

describe('input entry names', () => {
  it('keeps relative names and refuses what leaves the folder', () => {
    expect(inputEntryPath('a/./b.dcm')).toBe('a/b.dcm');
    expect(inputEntryPath('./')).toBe('');
    expect(() => inputEntryPath('/etc/passwd')).toThrow(/absolute/);
    expect(() => inputEntryPath('a/../../x')).toThrow(/"\.\."/);
  });
});

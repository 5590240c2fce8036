import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCtSeries } from '@dicomflow/test-helpers';
import { OutputFeed } from './output-feed.js';
import { BadOutputTarError, spoolOutput } from './spool-output.js';

interface Member {
  readonly name: string;
  readonly body?: Buffer;
  readonly type?: 'file' | 'directory';
}

async function tarOf(members: readonly Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const packed = buffer(pack);
  for (const member of members) {
    if (member.type === 'directory') pack.entry({ name: member.name, type: 'directory' });
    else pack.entry({ name: member.name, size: member.body?.length ?? 0 }, member.body ?? Buffer.alloc(0));
  }
  pack.finalize();
  return packed;
}

describe('spoolOutput', () => {
  let scratch: string;
  let instances: Buffer[];

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'dicomflow-spool-output-'));
    const files = await generateCtSeries(join(scratch, 'series'), 3, { rows: 64, columns: 64 });
    instances = await Promise.all(files.map((file) => readFile(file)));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('spools every DICOM member byte for byte in tar order and lists what is not DICOM', async () => {
    const [first, second, third] = instances as [Buffer, Buffer, Buffer];
    const archive = await tarOf([
      { name: 'out/', type: 'directory' },
      { name: 'out/b.dcm', body: first },
      { name: 'out/notes.txt', body: Buffer.from('not DICOM') },
      { name: 'out/a.dcm', body: second },
      { name: '../c.dcm', body: third },
    ]);
    const dir = join(scratch, 'ordered');
    const feed = new OutputFeed();
    await spoolOutput(Readable.from([archive]), dir, feed);

    expect(feed.ended).toBe(true);
    expect(feed.instances.map((i) => i.member)).toEqual(['out/b.dcm', 'out/a.dcm', '../c.dcm']);
    const spooled = await Promise.all(feed.instances.map((i) => readFile(i.file.path)));
    expect(spooled).toEqual([first, second, third]);
    // Member names never become paths: "../c.dcm" is a numbered file inside the folder.
    for (const instance of feed.instances) expect(instance.file.path.startsWith(`${dir}/`)).toBe(true);
    expect(feed.skipped).toEqual([{ member: 'out/notes.txt', reason: expect.any(String) as string }]);
  });

  it('fails as a bad tar when the archive ends inside a member, after feeding the whole ones', async () => {
    const [first, second] = instances as [Buffer, Buffer];
    const archive = await tarOf([
      { name: 'a.dcm', body: first },
      { name: 'b.dcm', body: second },
    ]);
    const cut = archive.subarray(0, 512 + first.length + (512 - (first.length % 512)) + 512 + 1000);
    const feed = new OutputFeed();
    const failure = await spoolOutput(Readable.from([cut]), join(scratch, 'cut'), feed).catch(
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(BadOutputTarError);
    expect(feed.failure).toBe(failure);
    expect(feed.ended).toBe(false);
    expect(feed.instances.map((i) => i.member)).toEqual(['a.dcm']);
  });

  it('fails with the file system error (not as a bad tar) when a member cannot be written', async () => {
    const [first] = instances as [Buffer];
    const dir = join(scratch, 'unwritable');
    // The first member's file name is taken by a folder: opening it for writing fails with EISDIR.
    await mkdir(join(dir, '000000.dcm'), { recursive: true });
    const feed = new OutputFeed();
    const failure = await spoolOutput(
      Readable.from([await tarOf([{ name: 'a.dcm', body: first }])]),
      dir,
      feed,
    ).catch((err: unknown) => err);
    expect(failure).not.toBeInstanceOf(BadOutputTarError);
    expect(failure).toMatchObject({ code: 'EISDIR' });
    expect(feed.failure).toBe(failure);
    expect(feed.instances).toEqual([]);
  });
});

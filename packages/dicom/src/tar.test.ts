import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import tar from 'tar-stream';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarStream, tarMemberName, tarSize } from './tar.js';
import { fitsUstar, tarChunks, tarHeader } from './tar-writer.js';

let dir: string;

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dicom-tar-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tar', () => {
  it('streams exactly tarSize bytes and the members read back intact', async () => {
    const sizes = [0, 1, 511, 512, 513, 100_000];
    const entries = await Promise.all(
      sizes.map(async (size, i) => {
        const path = join(dir, `f${i}`);
        const body = Buffer.alloc(size, i + 1);
        await writeFile(path, body);
        const name = `${'1.2.840.113619.2.55.3.604688119.969.1268071029.320'.padEnd(64, '1')}/${'1.3.12.2.1107.5.1.4.73179.30000022'.padEnd(64, '7')}/${String(i).padEnd(60, '9')}.dcm`;
        return { name, path, size, sha: createHash('sha256').update(body).digest('hex') };
      }),
    );
    expect(entries.every((e) => fitsUstar(e.name))).toBe(true);
    const bytes = await buffer(createTarStream(entries));
    expect(bytes.length).toBe(tarSize(entries));

    const seen: Array<{ name: string; sha: string }> = [];
    const extract = tar.extract();
    extract.on('entry', (header, stream, next) => {
      void buffer(stream).then((b) => {
        seen.push({ name: header.name, sha: createHash('sha256').update(b).digest('hex') });
        next();
      });
    });
    await new Promise<void>((resolve, reject) => {
      extract.on('finish', resolve);
      extract.on('error', reject);
      Readable.from([bytes]).pipe(extract);
    });
    expect(seen).toEqual(entries.map((e) => ({ name: e.name, sha: e.sha })));
    // Read through the thread pool, or alternating per file: the same bytes.
    expect((await buffer(createTarStream(entries, () => false))).equals(bytes)).toBe(true);
    let turn = 0;
    expect((await buffer(createTarStream(entries, () => turn++ % 2 === 0))).equals(bytes)).toBe(true);
  });

  it('packs members into whole chunks: every chunk but the last is chunkBytes long, the bytes the same', async () => {
    const sizes = [0, 1, 511, 512, 513, 3000, 7];
    const members = await Promise.all(
      sizes.map(async (size, i) => {
        const path = join(dir, `packed${i}`);
        await writeFile(path, Buffer.alloc(size, i + 10));
        const name = `packed/${i}.dcm`;
        return {
          name,
          path,
          size,
          header: tarHeader({ name, type: 'file', size, mode: 0o644, mtime: new Date(0) }),
        };
      }),
    );
    const whole = Buffer.concat(await collect(tarChunks(members, 1 << 20)));
    expect(whole.length).toBe(tarSize(members));
    for (const chunkBytes of [100, 512, 700, 1024]) {
      const chunks = await collect(tarChunks(members, chunkBytes, () => chunkBytes % 200 === 0));
      expect(chunks.slice(0, -1).every((chunk) => chunk.length === chunkBytes)).toBe(true);
      expect((chunks.at(-1)?.length ?? 0) <= chunkBytes).toBe(true);
      // All chunks were kept before joining: one handed on was never written again.
      expect(Buffer.concat(chunks).equals(whole)).toBe(true);
    }
  });

  for (const [mode, inline] of [
    ['synchronous reads', () => true],
    ['thread pool', () => false],
  ] as const) {
    it(`fails naming the member when a file is shorter than its entry says (${mode})`, async () => {
      const path = join(dir, 'shrunk');
      await writeFile(path, Buffer.alloc(1000, 7));
      const entries = [{ name: 'a/shrunk.dcm', path, size: 4000 }];
      await expect(buffer(createTarStream(entries, inline))).rejects.toThrow(
        'tar member a/shrunk.dcm: its file has 1000 of the 4000 bytes expected',
      );
    });

    it(`fails naming the member when its file is gone (${mode})`, async () => {
      const entries = [{ name: 'a/gone.dcm', path: join(dir, 'never-written'), size: 10 }];
      await expect(buffer(createTarStream(entries, inline))).rejects.toMatchObject({
        name: 'TarMemberReadError',
        member: 'a/gone.dcm',
        message: expect.stringContaining('tar member a/gone.dcm: its file cannot be read: ENOENT') as unknown,
      });
    });
  }

  it('refuses a member name that does not fit a ustar header', async () => {
    const path = join(dir, 'long');
    await writeFile(path, Buffer.alloc(10, 1));
    const name = `${'x'.repeat(120)}.dcm`;
    expect(fitsUstar(name)).toBe(false);
    await expect(buffer(createTarStream([{ name, path, size: 10 }]))).rejects.toThrow(
      `tar member name too long for ustar: ${name}`,
    );
  });

  it('lays out members by keyword values, path-safe', () => {
    const elements = {
      '0020000D': { vr: 'UI', Value: ['1.2.3'] },
      '00080060': { vr: 'CS', Value: ['C/T'] },
    };
    expect(tarMemberName(['StudyInstanceUID', 'Modality', 'SeriesDescription'], elements, '9.8.7')).toBe(
      '1.2.3/C_T/unknown/9.8.7.dcm',
    );
    expect(tarMemberName([], elements, '9.8.7')).toBe('9.8.7.dcm');
  });
});

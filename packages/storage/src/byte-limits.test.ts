import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { exactSize, readAtMost } from './byte-limits.js';
import { StorageError } from './storage-error.js';

const where = { operation: 'putStream', bucket: 'b', key: 'k' };

async function through(chunks: Buffer[], size: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), exactSize(size, where), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) out.push(chunk);
  });
  return Buffer.concat(out);
}

describe('exactSize', () => {
  it('passes exactly the declared bytes through', async () => {
    expect((await through([Buffer.from('abc'), Buffer.from('de')], 5)).toString()).toBe('abcde');
    expect((await through([], 0)).length).toBe(0);
  });

  it('fails a stream that ends short', async () => {
    await expect(through([Buffer.from('abc')], 4)).rejects.toMatchObject({
      kind: 'permanent',
      code: 'SizeMismatch',
    });
  });

  it('fails a stream that runs long, never passing the surplus on', async () => {
    const out: Buffer[] = [];
    const run = pipeline(
      Readable.from([Buffer.from('ab'), Buffer.from('cd')]),
      exactSize(3, where),
      async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) out.push(chunk);
      },
    );
    await expect(run).rejects.toBeInstanceOf(StorageError);
    expect(Buffer.concat(out).length).toBeLessThanOrEqual(3);
  });
});

describe('readAtMost', () => {
  it('returns the whole stream when it fits', async () => {
    const body = await readAtMost(Readable.from([Buffer.from('01234'), Buffer.from('56789')]), 10, where);
    expect(body.toString()).toBe('0123456789');
  });

  it('refuses and destroys a stream above the limit', async () => {
    const source = Readable.from([Buffer.from('01234'), Buffer.from('56789'), Buffer.from('more')]);
    await expect(readAtMost(source, 9, where)).rejects.toMatchObject({
      kind: 'permanent',
      code: 'ObjectTooLarge',
    });
    expect(source.destroyed).toBe(true);
  });
});

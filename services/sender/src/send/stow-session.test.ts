import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBearerToken } from './bearer-token.js';
import type { OutputInstance } from './output-feed.js';
import { takeBatch } from './stow-session.js';

/** A queue over `sizes` (file sizes), as takeBatch sees it. */
function queueOf(sizes: readonly number[]) {
  const instances: OutputInstance[] = sizes.map((size, n) => ({
    member: `out/${n}.dcm`,
    file: {
      path: `/spool/${n}.dcm`,
      size,
      datasetOffset: 132,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUid: `1.2.3.${n}`,
      transferSyntaxUid: '1.2.840.10008.1.2.1',
    },
  }));
  return {
    peek: () => instances[0],
    take: () => {
      const next = instances.shift();
      if (!next) throw new Error('nothing to take');
      return next;
    },
    left: () => instances.length,
  };
}

const sizesOf = (batch: readonly OutputInstance[]) => batch.map((i) => i.file.size);

describe('takeBatch', () => {
  it('takes what is at hand up to the instance limit', () => {
    const queue = queueOf([1, 1, 1, 1, 1]);
    expect(sizesOf(takeBatch(queue, { batchInstances: 2, batchBytes: 100 }))).toEqual([1, 1]);
    expect(sizesOf(takeBatch(queue, { batchInstances: 2, batchBytes: 100 }))).toEqual([1, 1]);
    expect(sizesOf(takeBatch(queue, { batchInstances: 2, batchBytes: 100 }))).toEqual([1]);
    expect(takeBatch(queue, { batchInstances: 2, batchBytes: 100 })).toEqual([]);
  });

  it('stops before the byte limit, and sends a larger instance alone', () => {
    const queue = queueOf([40, 50, 20, 300, 10]);
    const limits = { batchInstances: 100, batchBytes: 100 };
    expect(sizesOf(takeBatch(queue, limits))).toEqual([40, 50]);
    expect(sizesOf(takeBatch(queue, limits))).toEqual([20]);
    expect(sizesOf(takeBatch(queue, limits))).toEqual([300]);
    expect(sizesOf(takeBatch(queue, limits))).toEqual([10]);
    expect(queue.left()).toBe(0);
  });
});

describe('readBearerToken', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tokens-'));
    await writeFile(join(dir, 'pacs'), '  eyJhbGciOi.J9-_~+/==\n');
    await writeFile(join(dir, 'empty'), '\n');
    await writeFile(join(dir, 'two-lines'), 'abc\nX-Evil: 1\n');
    await writeFile(join(dir, 'huge'), 'a'.repeat(20_000));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the token of the flow, or the trimmed content of the token file', async () => {
    expect(await readBearerToken({ token: 'abc' }, dir)).toBe('abc');
    expect(await readBearerToken({ token_file: 'pacs' }, dir)).toBe('eyJhbGciOi.J9-_~+/==');
    expect(await readBearerToken({}, dir)).toBeUndefined();
  });

  it.each([
    ['missing', 'cannot be read (ENOENT)'],
    ['empty', 'is empty'],
    ['two-lines', 'does not hold a bearer token'],
    ['huge', 'is larger than 16384 bytes'],
    ['../pacs', 'is not a plain file name'],
  ])('refuses for good a token file that is %s, without its content', async (name, why) => {
    const error = await readBearerToken({ token_file: name }, dir).catch((err: unknown) => err);
    expect(error).toMatchObject({ name: 'StowError', transient: false, code: 'token' });
    expect(
      (error as Error).message.startsWith(`token_file ${name} (in SENDER_TOKEN_DIR ${dir}): ${why}`),
    ).toBe(true);
    expect((error as Error).message).not.toContain('Evil');
  });
});

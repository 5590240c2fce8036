import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransferSyntax } from '@dicomflow/dicom';
import { generateCtSeries, readFileMeta } from '@dicomflow/test-helpers';
import { SpoolWriteStream } from './spool-write-stream.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spool-write-stream-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Deflated data is not framed on the way (it is checked from the file), so any bytes will do here.
const DEFLATED = TransferSyntax.DeflatedExplicitVRLittleEndian;

/** Bytes `n` long, different in every position mod 251, so a misplaced slice shows. */
function pattern(n: number, seed: number): Buffer {
  const bytes = Buffer.alloc(n);
  for (let i = 0; i < n; i++) bytes[i] = (i + seed) % 251;
  return bytes;
}

describe('SpoolWriteStream', () => {
  for (const [inline, fsync] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    it(`writes the prefix, then every chunk in order (${inline ? 'inline' : 'thread pool'}${fsync ? ', fsync' : ''})`, async () => {
      const path = join(dir, `instance-${String(inline)}-${String(fsync)}.part`);
      const prefix = pattern(132, 7);
      const stream = new SpoolWriteStream(path, prefix, DEFLATED, fsync, undefined, inline);
      // More than the bytes kept in flight, in writes of several sizes, some corked together.
      const chunks = Array.from({ length: 40 }, (_, i) => pattern(1000 + i * 2000, i));
      for (const [i, chunk] of chunks.entries()) {
        if (i % 3 === 0) stream.cork();
        stream.write(chunk);
        if (i % 3 === 2) stream.uncork();
      }
      stream.uncork();
      stream.end();
      await finished(stream);
      expect((await readFile(path)).equals(Buffer.concat([prefix, ...chunks]))).toBe(true);
    });
  }

  it('takes a 1.2 MB dataset written one byte at a time, stores it whole and reads its header (both modes)', async () => {
    // Each write was a queue entry (spliced from the front), a header Buffer and, inline, a system call:
    // 1.2M of them took seconds and ~500 MB of heap.
    const [file] = await generateCtSeries(join(dir, 'one-byte'), 1, { rows: 768, columns: 768 });
    if (!file) throw new Error('no fixture');
    const meta = await readFileMeta(file);
    const whole = await readFile(file);
    const prefix = whole.subarray(0, meta.datasetOffset);
    const dataset = whole.subarray(meta.datasetOffset);
    expect(dataset.length).toBeGreaterThan(1_000_000);
    for (const inline of [false, true]) {
      const path = join(dir, `one-byte-${String(inline)}.part`);
      const stream = new SpoolWriteStream(path, prefix, meta.transferSyntaxUid, false, undefined, inline);
      for (let i = 0; i < dataset.length; i++) {
        if (!stream.write(dataset.subarray(i, i + 1))) await new Promise((r) => stream.once('drain', r));
      }
      stream.end();
      await finished(stream);
      expect((await readFile(path)).equals(whole)).toBe(true);
      const info = await stream.inspect();
      expect(info.sopInstanceUid).toBe(meta.sopInstanceUid);
      expect(info.size).toBe(whole.length);
    }
  });

  for (const inline of [false, true]) {
    it(`fails when the file cannot be written (${inline ? 'inline' : 'thread pool'})`, async () => {
      const path = join(dir, `read-only-${String(inline)}.part`);
      closeSync(openSync(path, 'w'));
      const readOnly = openSync(path, 'r');
      const stream = new SpoolWriteStream(path, pattern(10, 1), DEFLATED, false, readOnly, inline);
      stream.on('error', () => undefined);
      stream.write(pattern(100, 2));
      stream.end();
      await expect(finished(stream)).rejects.toMatchObject({ code: 'EBADF' });
    });
  }
});

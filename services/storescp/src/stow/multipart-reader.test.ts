import { describe, expect, it } from 'vitest';
import { parseMediaType } from './media-type.js';
import { DEFAULT_MAX_HEADER_BYTES, MultipartError, MultipartReader } from './multipart-reader.js';

interface ReadPart {
  headers: Record<string, string>;
  body: Buffer;
}

/** A source that yields `body` in chunks of `size` bytes, then ends (or fails with `failure`). */
function chunksOf(body: Buffer, size: number, failure?: Error): AsyncIterator<Buffer> {
  let at = 0;
  return {
    next: () => {
      if (at < body.length) {
        const value = body.subarray(at, at + size);
        at += size;
        return Promise.resolve({ value, done: false });
      }
      return failure ? Promise.reject(failure) : Promise.resolve({ value: undefined, done: true });
    },
  };
}

/** Every part of `body` (fed in chunks of `size` bytes) with its headers and whole content. */
async function readAll(body: Buffer | string, boundary: string, size = 1 << 20): Promise<ReadPart[]> {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const reader = new MultipartReader(chunksOf(bytes, size), boundary);
  const parts: ReadPart[] = [];
  for (let part = await reader.next(); part; part = await reader.next()) {
    const pieces: Buffer[] = [];
    for await (const piece of part.body) pieces.push(piece);
    parts.push({ headers: Object.fromEntries(part.headers), body: Buffer.concat(pieces) });
  }
  return parts;
}

const TWO_PARTS =
  '--b1\r\nContent-Type: application/dicom\r\n\r\nfirst\r\n' +
  '--b1\r\ncontent-type: application/dicom\r\nX-Extra:  two words \r\n\r\nsecond\r\nline\r\n' +
  '--b1--\r\n';

describe('MultipartReader', () => {
  it('splits a body into its parts with their headers', async () => {
    const parts = await readAll(TWO_PARTS, 'b1');
    expect(parts).toEqual([
      { headers: { 'content-type': 'application/dicom' }, body: Buffer.from('first') },
      {
        headers: { 'content-type': 'application/dicom', 'x-extra': 'two words' },
        body: Buffer.from('second\r\nline'),
      },
    ]);
  });

  it('gives the same parts however the body is cut into chunks, boundaries split across them included', async () => {
    const whole = await readAll(TWO_PARTS, 'b1');
    for (let size = 1; size <= TWO_PARTS.length; size++) {
      expect(await readAll(TWO_PARTS, 'b1', size), `chunks of ${size}`).toEqual(whole);
    }
  });

  it('drops the preamble and the epilogue, and takes padding after a boundary', async () => {
    const body =
      'This is a preamble.\r\n--b1 \t\r\n\r\npayload\r\n--b1--  \r\nand an epilogue\r\n--b1\r\n\r\nnot a part';
    for (const size of [1, 3, 7, 1000]) {
      expect(await readAll(body, 'b1', size)).toEqual([{ headers: {}, body: Buffer.from('payload') }]);
    }
  });

  it('takes a close delimiter at the very end, without a CRLF after it', async () => {
    expect(await readAll('--b1\r\n\r\nx\r\n--b1--', 'b1')).toEqual([{ headers: {}, body: Buffer.from('x') }]);
  });

  it('keeps boundary-like bytes that are not a delimiter inside the content', async () => {
    const content = 'a--b1\r\n-b1\r\n--b\r\n--b1x';
    // "\r\n--b1x" is a delimiter followed by junk: RFC 2046 forbids content that holds the delimiter.
    const safe = content.slice(0, content.lastIndexOf('\r\n--b1x'));
    for (const size of [1, 2, 5, 100]) {
      const parts = await readAll(`--b1\r\n\r\n${safe}\r\n--b1--`, 'b1', size);
      expect(parts.map((p) => p.body.toString('latin1'))).toEqual([safe]);
    }
  });

  it('reads a quoted boundary with spaces as the Content-Type gives it', async () => {
    const boundary = parseMediaType('multipart/related; boundary="with space:(1)"')?.parameters.get(
      'boundary',
    );
    expect(boundary).toBe('with space:(1)');
    const parts = await readAll('--with space:(1)\r\n\r\nbody\r\n--with space:(1)--', boundary ?? '');
    expect(parts.map((p) => p.body.toString())).toEqual(['body']);
  });

  it('skips what a caller left unread of a part', async () => {
    const reader = new MultipartReader(chunksOf(Buffer.from(TWO_PARTS), 2), 'b1');
    const first = await reader.next();
    for await (const piece of first?.body ?? []) {
      expect(piece.toString()).toBe('fi'); // read a little, then move on
      break;
    }
    const second = await reader.next();
    const pieces: Buffer[] = [];
    for await (const piece of second?.body ?? []) pieces.push(piece);
    expect(Buffer.concat(pieces).toString()).toBe('second\r\nline');
    expect(await reader.next()).toBeUndefined();
    expect(await reader.next()).toBeUndefined();
  });

  it('streams a large part in pieces no larger than a chunk and a delimiter', async () => {
    const payload = Buffer.alloc(1024 * 1024, 0x2d); // all dashes: the worst case for the search
    const body = Buffer.concat([Buffer.from('--b1\r\n\r\n'), payload, Buffer.from('\r\n--b1--\r\n')]);
    const reader = new MultipartReader(chunksOf(body, 64 * 1024), 'b1');
    const part = await reader.next();
    const sizes: number[] = [];
    let total = 0;
    for await (const piece of part?.body ?? []) {
      sizes.push(piece.length);
      total += piece.length;
    }
    expect(total).toBe(payload.length);
    expect(sizes.length).toBeGreaterThanOrEqual(16);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(64 * 1024 + '\r\n--b1'.length);
  });

  it('matches a reference split on random bodies cut at random places', async () => {
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = '\r\n-b1x';
    for (let round = 0; round < 200; round++) {
      const bodies = Array.from({ length: 1 + random(4) }, () => {
        let text = '';
        for (let i = random(40); i > 0; i--) text += alphabet.charAt(random(alphabet.length));
        // Content must not hold the delimiter (RFC 2046); cut such bodies where it starts.
        const cut = text.indexOf('\r\n--b1');
        return cut >= 0 ? text.slice(0, cut) : text;
      });
      const body = bodies.map((b) => `--b1\r\n\r\n${b}\r\n`).join('') + '--b1--';
      const parts = await readAll(body, 'b1', 1 + random(9));
      expect(parts.map((p) => p.body.toString('latin1'))).toEqual(bodies);
    }
  });

  it.each([
    ['no boundary at all', 'just some bytes', /no boundary/],
    ['no closing boundary', '--b1\r\n\r\npart without end', /closing boundary is missing/],
    ['a delimiter that is never closed', '--b1\r\n\r\nx\r\n--b1', /closing "--" is missing/],
    ['junk after a boundary', '--b1junk\r\n\r\nx\r\n--b1--', /must end with CRLF/],
    ['a body ending inside headers', '--b1\r\nContent-Type: appl', /inside the headers/],
    ['a header line without a colon', '--b1\r\nno colon here\r\n\r\nx\r\n--b1--', /not "name: value"/],
  ])('refuses %s', async (_name, body, message) => {
    for (const size of [1, 4, 1000]) {
      const failure = readAll(body, 'b1', size);
      await expect(failure).rejects.toThrow(MultipartError);
      await expect(failure).rejects.toThrow(message);
    }
  });

  it('refuses part headers longer than the bound without reading on', async () => {
    const long = `--b1\r\nX: ${'y'.repeat(DEFAULT_MAX_HEADER_BYTES)}\r\n\r\nx\r\n--b1--`;
    await expect(readAll(long, 'b1', 512)).rejects.toThrow(/longer than 16384 bytes/);
  });

  it('passes on what the source throws', async () => {
    const reader = new MultipartReader(
      chunksOf(Buffer.from('--b1\r\n\r\nstart of a part'), 1000, new Error('connection reset')),
      'b1',
    );
    const part = await reader.next();
    const read = async (): Promise<Buffer[]> => {
      const pieces: Buffer[] = [];
      for await (const piece of part?.body ?? []) pieces.push(piece);
      return pieces;
    };
    await expect(read()).rejects.toThrow('connection reset');
  });
});

import { describe, expect, it } from 'vitest';
import { PieceCoalescer, SMALL_PIECE } from './piece-coalescer.js';

function pattern(n: number, seed: number): Buffer {
  const bytes = Buffer.alloc(n);
  for (let i = 0; i < n; i++) bytes[i] = (i * 13 + seed) % 251;
  return bytes;
}

describe('PieceCoalescer', () => {
  it('keeps the order of bytes and passes large pieces on without copying them', () => {
    const large = pattern(SMALL_PIECE, 1);
    const pieces = [
      pattern(10, 2),
      pattern(3, 3),
      large,
      pattern(1, 4),
      pattern(SMALL_PIECE * 3, 5),
      pattern(7, 6),
    ];
    const coalescer = new PieceCoalescer();
    for (const piece of pieces) coalescer.add(piece);
    expect(coalescer.pendingBytes).toBe(Buffer.concat(pieces).length);
    const out = coalescer.drain();
    expect(Buffer.concat(out).equals(Buffer.concat(pieces))).toBe(true);
    expect(out).toHaveLength(5); // [10+3], large, [1], large, [7]
    expect(out[1]).toBe(large);
    expect(coalescer.pendingBytes).toBe(0);
  });

  it('turns a million 1-byte pieces into a few staging slices, still valid after later adds', () => {
    const source = pattern(1_000_000, 7);
    const coalescer = new PieceCoalescer();
    const drained: Buffer[] = [];
    for (let i = 0; i < source.length; i++) {
      coalescer.add(source.subarray(i, i + 1));
      if (i % 100_003 === 0) drained.push(...coalescer.drain());
    }
    drained.push(...coalescer.drain());
    expect(drained.length).toBeLessThan(40);
    // Checked only at the end: a slice overwritten by a later add would show here.
    expect(Buffer.concat(drained).equals(source)).toBe(true);
  });

  it('drops what was not drained on clear', () => {
    const coalescer = new PieceCoalescer();
    coalescer.add(pattern(100, 1));
    coalescer.clear();
    coalescer.add(pattern(5, 2));
    expect(Buffer.concat(coalescer.drain()).equals(pattern(5, 2))).toBe(true);
  });
});

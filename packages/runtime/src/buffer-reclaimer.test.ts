import { afterEach, describe, expect, it } from 'vitest';
import { startBufferReclaimer, type BufferReclaimer } from './buffer-reclaimer.js';

describe('startBufferReclaimer', () => {
  let reclaimer: BufferReclaimer | undefined;
  afterEach(() => {
    reclaimer?.stop();
    reclaimer = undefined;
  });

  const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  it('collects once the Buffers allocated since the last collection pass the threshold', async () => {
    const calls: string[] = [];
    reclaimer = startBufferReclaimer({
      thresholdBytes: 8 * 1024 * 1024,
      intervalMs: 5,
      gc: ({ type }) => calls.push(type),
    });
    const held: Buffer[] = [];
    for (let i = 0; i < 16; i++) held.push(Buffer.alloc(1024 * 1024));
    for (let i = 0; i < 100 && calls.length === 0; i++) await settle(5);
    expect(calls[0]).toBe('minor');
    expect(reclaimer.collections).toBeGreaterThanOrEqual(1);
    // The Buffers are still held: what survived is the new baseline, so it does not collect again.
    const after = calls.length;
    await settle(50);
    expect(calls.length).toBe(after);
    expect(held).toHaveLength(16);
  });

  it('does not collect while fewer Buffers than the threshold were allocated', async () => {
    const calls: string[] = [];
    reclaimer = startBufferReclaimer({
      thresholdBytes: 512 * 1024 * 1024,
      intervalMs: 5,
      gc: ({ type }) => calls.push(type),
    });
    const held = Buffer.alloc(4 * 1024 * 1024);
    await settle(50);
    expect(calls).toEqual([]);
    expect(held.length).toBe(4 * 1024 * 1024);
  });

  it('looks from a loop that keeps the event loop from its timer, once per threshold of bytes noted', () => {
    const calls: string[] = [];
    reclaimer = startBufferReclaimer({
      thresholdBytes: 4 * 1024 * 1024,
      intervalMs: 60_000,
      gc: ({ type }) => calls.push(type),
    });
    const held: Buffer[] = [];
    // Synchronous, as a file-to-socket loop whose writes all complete at once: no timer can run.
    for (let i = 0; i < 8; i++) {
      held.push(Buffer.alloc(1024 * 1024));
      reclaimer.note(1024 * 1024);
    }
    expect(calls[0]).toBe('minor');
    expect(held).toHaveLength(8);
  });

  it('does nothing without a collector (a process started without --expose-gc)', () => {
    reclaimer = startBufferReclaimer({ intervalMs: 5 });
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
    expect(reclaimer.collections).toBe(0);
  });
});

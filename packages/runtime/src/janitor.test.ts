import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import { createJanitorCounter, reportDeletions, startJanitor } from './janitor.js';

const quiet = { warn: vi.fn(), info: vi.fn(), debug: vi.fn() };

describe('startJanitor', () => {
  it('runs a pass at once, then again after the interval, never two at a time', async () => {
    let running = 0;
    let most = 0;
    let passes = 0;
    const janitor = startJanitor({
      intervalMs: 5,
      logger: quiet,
      runOnce: async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 10));
        running--;
        passes++;
      },
    });
    await vi.waitFor(() => {
      expect(passes).toBeGreaterThanOrEqual(3);
    });
    await janitor.stop();
    await janitor.stop();
    const after = passes;
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(passes).toBe(after);
    expect(most).toBe(1);
  });

  it('logs a failed pass and tries again; stop aborts the pass under way and waits for it', async () => {
    const warn = vi.fn();
    let calls = 0;
    let aborted = false;
    const janitor = startJanitor({
      intervalMs: 1,
      logger: { warn },
      runOnce: async (signal) => {
        calls++;
        if (calls === 1) throw new Error('database away');
        await new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve();
          });
        });
      },
    });
    await vi.waitFor(() => {
      expect(calls).toBe(2);
    });
    const [fields, message] = warn.mock.calls[0] as [{ err: unknown }, string];
    expect(fields.err).toBeInstanceOf(Error);
    expect(message).toBe('janitor pass failed; trying again later');
    await janitor.stop();
    expect(aborted).toBe(true);
  });
});

describe('reportDeletions', () => {
  it('counts each kind and logs the counts', async () => {
    const registry = new Registry();
    const counter = createJanitorCounter(registry);
    const info = vi.fn();
    reportDeletions({ receipts: 2, uploads: 0 }, counter, { info, debug: vi.fn() });
    reportDeletions({ receipts: 1 }, counter, { info, debug: vi.fn() });
    const text = await registry.metrics();
    expect(text).toContain('dicomflow_janitor_deleted_total{kind="receipts"} 3');
    expect(text).not.toContain('kind="uploads"');
    expect(info).toHaveBeenCalledWith({ removed: { receipts: 2 } }, 'janitor removed expired data');
  });
});

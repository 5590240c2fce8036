import { describe, expect, it } from 'vitest';
import {
  computeBackoff,
  errorKind,
  GoneError,
  PermanentError,
  retryUntilDone,
  sleep,
  TransientError,
} from './index.js';

describe('computeBackoff', () => {
  it('doubles from initialMs and caps at maxMs', () => {
    const opts = { initialMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 50, 5000].map((attempt) => computeBackoff(attempt, opts))).toEqual([
      100, 200, 400, 800, 1000, 1000, 1000,
    ]);
  });

  it('treats attempts below 1 or not finite as the first', () => {
    const opts = { initialMs: 100, maxMs: 1000 };
    expect(computeBackoff(0, opts)).toBe(100);
    expect(computeBackoff(-3, opts)).toBe(100);
    expect(computeBackoff(Number.NaN, opts)).toBe(100);
  });

  it('with jitter stays within [0, capped delay] and varies', () => {
    const opts = { initialMs: 100, maxMs: 1000, jitter: true };
    const samples = Array.from({ length: 500 }, () => computeBackoff(3, opts));
    for (const value of samples) {
      expect(Number.isInteger(value)).toBe(true);
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThanOrEqual(400);
    }
    expect(new Set(samples).size).toBeGreaterThan(10);
    for (let i = 0; i < 200; i++) expect(computeBackoff(40, opts)).toBeLessThanOrEqual(1000);
  });
});

describe('sleep', () => {
  it('resolves, and rejects at once when the signal is already aborted', async () => {
    await expect(sleep(1)).resolves.toBeUndefined();
    const aborted = AbortSignal.abort();
    await expect(sleep(60_000, aborted)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects when the signal aborts while waiting', async () => {
    const controller = new AbortController();
    const waiting = sleep(60_000, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('errorKind', () => {
  it('classifies the typed errors and keeps message and cause', () => {
    const cause = new Error('root');
    const permanent = new PermanentError('bad message', { cause });
    expect(errorKind(permanent)).toBe('permanent');
    expect(permanent.cause).toBe(cause);
    expect(permanent.message).toBe('bad message');
    expect(permanent).toBeInstanceOf(Error);
    expect(errorKind(new TransientError('later'))).toBe('transient');
    expect(errorKind(new GoneError('deleted'))).toBe('gone');
  });

  it('reads the kind property of foreign errors and defaults to transient', () => {
    expect(errorKind(Object.assign(new Error('x'), { kind: 'gone' }))).toBe('gone');
    expect(errorKind({ kind: 'permanent' })).toBe('permanent');
    expect(errorKind({ kind: 'fatal' })).toBe('transient');
    expect(errorKind(new Error('plain'))).toBe('transient');
    expect(errorKind('a string')).toBe('transient');
    expect(errorKind(null)).toBe('transient');
  });
});

describe('retryUntilDone', () => {
  const quick = { initialMs: 1, maxMs: 2 };

  it('tries a step until it succeeds, warning once per failure', async () => {
    const warnings: unknown[] = [];
    const untilDone = retryUntilDone({
      logger: { warn: (data: unknown) => warnings.push(data) },
      signal: new AbortController().signal,
      backoff: quick,
    });
    let tries = 0;
    await untilDone('connecting', () =>
      ++tries < 3 ? Promise.reject(new Error('down')) : Promise.resolve(),
    );
    expect(tries).toBe(3);
    expect(warnings).toMatchObject([
      { step: 'connecting', attempt: 1 },
      { step: 'connecting', attempt: 2 },
    ]);
  });

  it('gives up with the last error once the signal aborted', async () => {
    const stopping = new AbortController();
    const untilDone = retryUntilDone({
      logger: { warn: () => undefined },
      signal: stopping.signal,
      backoff: quick,
    });
    await expect(
      untilDone('migrating', () => {
        stopping.abort();
        return Promise.reject(new Error('db away'));
      }),
    ).rejects.toThrow('db away');
  });
});

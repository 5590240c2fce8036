import { describe, expect, it } from 'vitest';
import { waitFor } from './wait-for.js';

describe('waitFor', () => {
  it('returns once the predicate holds, having asked until then', async () => {
    let calls = 0;
    await waitFor(() => ++calls >= 3, 'the third call');
    expect(calls).toBe(3);
  });

  it('accepts an asynchronous predicate', async () => {
    let ready = false;
    setImmediate(() => (ready = true));
    await waitFor(() => Promise.resolve(ready), 'ready');
    expect(ready).toBe(true);
  });

  it('fails naming what it waited for once the bound has passed', async () => {
    await expect(waitFor(() => false, 'the impossible', 30)).rejects.toThrow(
      'timed out waiting for the impossible',
    );
  });
});

import { setTimeout as sleep } from 'node:timers/promises';

/** How often {@link waitFor} asks again. */
const POLL_INTERVAL_MS = 20;

/**
 * Polls `predicate` until it holds; fails naming `what` after `timeoutMs`. The timeout is a bound on a
 * test that would otherwise hang, not an assertion about speed.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(POLL_INTERVAL_MS);
  }
}

import { sleep } from '@dicomflow/runtime';
import type { Pool } from '@dicomflow/database';

/** How often a delivery waiting for another one of the same run asks again. */
const LOCK_POLL_MS = 500;

/** The advisory lock a delivery of `runId` holds (the janitor takes it too, without waiting). */
export function runLockKey(scope: string, runId: string): string {
  return `dicomflow-sender:${scope}:${runId}`;
}

/**
 * Runs `work` while holding a PostgreSQL advisory lock on the run, so two deliveries of the same
 * `flow.finished` (a redelivery while the first is still sending, on this replica or another) never send at
 * the same time: the second waits, then finds the first's acknowledgements and sends only what is left. The
 * lock is a session lock on a connection held for the duration; it is released with it. Rejects with the
 * signal's reason when `signal` aborts while waiting.
 */
export async function withRunLock<T>(
  pool: Pool,
  scope: string,
  runId: string,
  signal: AbortSignal,
  work: () => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  const key = runLockKey(scope, runId);
  let broken: Error | undefined;
  try {
    for (;;) {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtext($1)) AS locked',
        [key],
      );
      if (rows[0]?.locked === true) break;
      await sleep(LOCK_POLL_MS, signal);
    }
    try {
      return await work();
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch((err: unknown) => {
        // The session is unusable: dropping the connection releases the lock anyway.
        broken = err instanceof Error ? err : new Error(String(err));
      });
    }
  } finally {
    client.release(broken);
  }
}

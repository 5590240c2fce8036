import type Docker from 'dockerode';
import { sleep, TransientError } from '@dicomflow/runtime';

/** Exit codes of a process ended by a signal the engine sends when it stops its containers. */
const STOP_SIGNAL_EXIT_CODES = new Set([137, 143]);

/** How long, after such an exit, the engine gets to show that it is going down, and how often it is asked. */
export interface EngineWatchTiming {
  readonly settleMs: number;
  readonly pollMs: number;
}

export const DEFAULT_ENGINE_WATCH: EngineWatchTiming = { settleMs: 5000, pollMs: 200 };

/**
 * Tells apart a model killed by the engine going down from a model that was killed for its own reasons.
 * When the Docker engine stops (a restart, an upgrade), it stops every container first: the model ends
 * with SIGTERM or SIGKILL (143 or 137) although nothing was wrong with it, and the engine stops answering
 * moments later. Such an exit is no verdict on the model, so it becomes a transient error and the job runs
 * again once the engine is back. A model that the kernel's OOM killer ended (the container's `OOMKilled`)
 * or that was killed while the engine kept answering keeps its exit code.
 *
 * Resolves when the exit stands as the model's own; rejects with a {@link TransientError} when the engine
 * went away.
 */
export async function checkEngineStayedUp(
  docker: Docker,
  container: Docker.Container,
  exitCode: number,
  timing: EngineWatchTiming = DEFAULT_ENGINE_WATCH,
): Promise<void> {
  if (!STOP_SIGNAL_EXIT_CODES.has(exitCode)) return;
  let oomKilled = false;
  try {
    const info = (await container.inspect()) as { State?: { OOMKilled?: boolean } };
    oomKilled = info.State?.OOMKilled === true;
  } catch (err) {
    throw engineWentAway(exitCode, err);
  }
  if (oomKilled) return;
  const deadline = Date.now() + timing.settleMs;
  for (;;) {
    try {
      await docker.ping();
    } catch (err) {
      throw engineWentAway(exitCode, err);
    }
    if (Date.now() >= deadline) return;
    await sleep(timing.pollMs);
  }
}

function engineWentAway(exitCode: number, cause: unknown): TransientError {
  return new TransientError(
    `the Docker engine stopped while the model ran (the model ended with code ${exitCode} as the engine ` +
      'stopped its containers); the job will run again once the engine is back',
    { cause },
  );
}

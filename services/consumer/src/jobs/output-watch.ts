import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { Logger } from '@dicomflow/runtime';
import { tooManyBytes, tooManyEntries } from '../staging/output-limits.js';
import type { JobFailure } from './job-failure.js';

/** How often a running model's writes are measured, by default. */
export const OUTPUT_CHECK_INTERVAL_MS = 2000;

/** What to watch and the bounds it must stay within. */
export interface OutputWatchOptions {
  readonly container: Docker.Container;
  /** The output folder on this consumer's disk (work-folder mode); undefined in the archive mode. */
  readonly outputDir: string | undefined;
  readonly maxBytes: number;
  readonly maxEntries: number;
  /**
   * Archive mode: bytes the container's own layer held before the model started (its input), allowed on
   * top of `maxBytes`.
   */
  readonly baseBytes: number;
  readonly intervalMs: number;
  readonly logger: Logger;
}

/** A running watch: `stop()` ends it and says whether the model went past a bound (then it was killed). */
export interface OutputWatch {
  stop(): JobFailure | undefined;
}

/**
 * Measures what a running model wrote, every `intervalMs`, and kills the container once it is past
 * MAX_OUTPUT_BYTES or MAX_OUTPUT_ENTRIES: a model must not fill the host's disk before the check after it
 * exits. Work-folder mode walks the output folder (stopping at the bound); the archive mode asks the engine
 * for the size of the container's writable layer (everything it wrote, /tmp included). Measurements never
 * overlap; one that fails (the folder changes under it, the engine is busy) is skipped.
 */
export function watchOutput(options: OutputWatchOptions): OutputWatch {
  let exceeded: JobFailure | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const check = async (): Promise<void> => {
    try {
      exceeded = options.outputDir
        ? await measureFolder(options.outputDir, options.maxBytes, options.maxEntries)
        : await measureLayer(options.container, options.maxBytes + options.baseBytes, options.maxBytes);
    } catch {
      return;
    }
    if (exceeded && !stopped) {
      options.logger.warn(
        { reason: exceeded.message },
        'the running model went past an output bound; stopping it',
      );
      await options.container.kill().catch(() => undefined);
    }
  };
  const schedule = (): void => {
    timer = setTimeout(() => {
      void check().finally(() => {
        if (!stopped && !exceeded) schedule();
      });
    }, options.intervalMs);
  };
  schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      return exceeded;
    },
  };
}

/** Walks the folder with lstat, stopping at the first bound crossed. */
async function measureFolder(
  dir: string,
  maxBytes: number,
  maxEntries: number,
): Promise<JobFailure | undefined> {
  let bytes = 0;
  let entries = 0;
  const pending = [dir];
  for (let folder = pending.pop(); folder !== undefined; folder = pending.pop()) {
    for (const name of await readdir(folder)) {
      if (++entries > maxEntries) return tooManyEntries(maxEntries);
      const path = join(folder, name);
      const stats = await lstat(path);
      if (stats.isDirectory()) pending.push(path);
      else if ((bytes += stats.size) > maxBytes) return tooManyBytes(maxBytes);
    }
  }
  return undefined;
}

async function measureLayer(
  container: Docker.Container,
  limit: number,
  maxBytes: number,
): Promise<JobFailure | undefined> {
  // The Engine API's `size` query (not in dockerode's types) adds SizeRw, the writable layer's size.
  const options = { size: true } as Docker.ContainerInspectOptions;
  const info = (await container.inspect(options)) as { SizeRw?: number };
  return (info.SizeRw ?? 0) > limit ? tooManyBytes(maxBytes) : undefined;
}

import { formatProblem, loadFlowDirectory, type FlowDirectory, type LoadedFlow } from '@dicomflow/flows';
import type { Logger } from '@dicomflow/runtime';
import { logFlowChanges } from './flow-changes.js';
import { EMPTY_SNAPSHOT, type FlowSnapshot } from './flow-snapshot.js';

/**
 * The flows of one directory, reloaded on demand. Each file is validated on its own: an invalid one is
 * reported and skipped, the others stay active. A loaded flow whose file turns invalid keeps running in its
 * last valid version (a typo in an edit must not silently stop studies from being processed) until the file
 * is fixed or deleted. Reloads never overlap; requests made while one runs are
 * folded into a single reload that starts after it (and so sees every change made before the request).
 */
export class FlowCatalog {
  #snapshot: FlowSnapshot = EMPTY_SNAPSHOT;
  #running: Promise<unknown> = Promise.resolve();
  #queued: Promise<FlowSnapshot> | undefined;

  constructor(
    readonly directory: string,
    private readonly logger: Logger,
    private readonly onLoaded: (snapshot: FlowSnapshot) => void = () => undefined,
  ) {}

  /** The flows as the last finished load saw them. */
  snapshot(): FlowSnapshot {
    return this.#snapshot;
  }

  /** Reads the directory again; resolves with the snapshot of a load that started after this call. */
  reload(): Promise<FlowSnapshot> {
    this.#queued ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#load();
      });
    this.#running = this.#queued;
    return this.#queued;
  }

  async #load(): Promise<FlowSnapshot> {
    let loaded: FlowDirectory;
    try {
      loaded = await loadFlowDirectory(this.directory);
    } catch (err) {
      loaded = {
        flows: [],
        problems: [{ file: this.directory, line: 1, field: '(file)', reason: (err as Error).message }],
      };
    }
    // The directory's own problem (unreadable, missing) names the directory, never a file in it.
    const directoryProblem = loaded.problems.find((problem) => problem.file === this.directory);
    const before = this.#snapshot;
    const retained = lastValidOfBroken(before.flows, loaded);
    const after: FlowSnapshot = {
      generation: before.generation + 1,
      loadedAt: new Date(),
      flows: [...loaded.flows, ...retained].sort((a, b) => compareNames(a.file, b.file)),
      retained: retained.map((flow) => flow.file),
      problems: loaded.problems.filter((problem) => problem !== directoryProblem),
      directoryError: directoryProblem?.reason,
    };
    this.#snapshot = after;
    logFlowChanges(this.logger, before, after);
    if (before.generation === 0) {
      this.logger.info(
        {
          directory: this.directory,
          flows: after.flows.length,
          invalid: after.problems.map(formatProblem),
        },
        'flows loaded',
      );
    }
    this.onLoaded(after);
    return after;
  }
}

/** The flows of `before` whose file is still there but no longer valid: they keep running as they were. */
function lastValidOfBroken(before: readonly LoadedFlow[], loaded: FlowDirectory): LoadedFlow[] {
  const broken = new Set(loaded.problems.map((problem) => problem.file));
  return before.filter((flow) => broken.has(flow.file));
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

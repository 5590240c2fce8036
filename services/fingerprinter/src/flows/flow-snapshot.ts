import { basename } from 'node:path';
import type { FlowProblem, LoadedFlow } from '@dicomflow/flows';

/** The flows of the directory as one load saw them; matching uses one snapshot for a whole receipt. */
export interface FlowSnapshot {
  /** Counts loads; 0 before the first one finished. */
  readonly generation: number;
  readonly loadedAt: Date | undefined;
  /** Active flows, in file name order: the valid files' and the last valid version of each broken one. */
  readonly flows: readonly LoadedFlow[];
  /** Files of {@link flows} that are invalid now and run in their last valid version. */
  readonly retained: readonly string[];
  /** Why each invalid file was skipped (one entry per problem; a file may have several). */
  readonly problems: readonly FlowProblem[];
  /** Set when the directory itself could not be read: then no flow is known at all. */
  readonly directoryError: string | undefined;
}

/** What `/readyz` shows about the flows: names and hashes of the valid ones, problems of the others. */
export interface FlowReport {
  readonly directory: string;
  readonly generation: number;
  readonly loadedAt: string | undefined;
  readonly directoryError?: string;
  readonly flows: readonly {
    file: string;
    name: string;
    version: string;
    priority: number;
    hash: string;
    /** Set when the file is invalid now and this, its last valid version, keeps running. */
    lastValidVersion?: true;
  }[];
  readonly invalid: readonly FlowProblem[];
}

export const EMPTY_SNAPSHOT: FlowSnapshot = {
  generation: 0,
  loadedAt: undefined,
  flows: [],
  retained: [],
  problems: [],
  directoryError: undefined,
};

/** The snapshot as `/readyz` details; files are named relative to the flow directory. */
export function reportOf(directory: string, snapshot: FlowSnapshot): FlowReport {
  return {
    directory,
    generation: snapshot.generation,
    loadedAt: snapshot.loadedAt?.toISOString(),
    ...(snapshot.directoryError === undefined ? {} : { directoryError: snapshot.directoryError }),
    flows: snapshot.flows.map(({ file, flow, hash }) => ({
      file: basename(file),
      name: flow.name,
      version: flow.version,
      priority: flow.priority,
      hash,
      ...(snapshot.retained.includes(file) ? { lastValidVersion: true as const } : {}),
    })),
    invalid: snapshot.problems.map((problem) => ({ ...problem, file: basename(problem.file) })),
  };
}

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FlowDefinition } from '@dicomflow/messages';
import { hashFlow } from './flow-hash.js';
import type { FlowProblem } from './flow-problem.js';
import { parseFlow } from './parse-flow.js';

/** A valid flow loaded from a file. */
export interface LoadedFlow {
  /** The file path, as the directory and name were given. */
  readonly file: string;
  /** Every field present, defaults filled in. */
  readonly flow: FlowDefinition;
  /** {@link hashFlow} of `flow`. */
  readonly hash: string;
}

/** The outcome of loading one flow file. */
export type LoadFlowResult =
  ({ readonly ok: true } & LoadedFlow) | { readonly ok: false; readonly problems: readonly FlowProblem[] };

/** What a flow directory holds: the valid flows, and the problems of the files that are not. */
export interface FlowDirectory {
  readonly flows: readonly LoadedFlow[];
  readonly problems: readonly FlowProblem[];
}

/** The names a flow file may have. */
export const FLOW_FILE_PATTERN = /\.ya?ml$/i;

/** A flow file is a page of YAML; anything far bigger is not one. */
const MAX_FLOW_FILE_BYTES = 1024 * 1024;

/** Reads and validates one flow file; a file that cannot be read is a problem too, not an exception. */
export async function loadFlowFile(file: string): Promise<LoadFlowResult> {
  let text: string;
  try {
    const { size } = await stat(file);
    if (size > MAX_FLOW_FILE_BYTES) {
      return fileProblem(file, `is ${size} bytes; a flow file is at most ${MAX_FLOW_FILE_BYTES}`);
    }
    text = await readFile(file, 'utf8');
  } catch (err) {
    return fileProblem(file, `cannot be read: ${describeFsError(err)}`);
  }
  const parsed = parseFlow(text, file);
  if (!parsed.ok) return parsed;
  return { ok: true, file, flow: parsed.flow, hash: hashFlow(parsed.flow) };
}

/**
 * Loads every `*.yaml` / `*.yml` file directly in `dir` (not in sub-folders; names starting with `.`, such
 * as editor temporary files, are skipped), in name order. Each file is validated on its own: one invalid
 * file is reported and leaves the others loaded.
 */
export async function loadFlowDirectory(dir: string): Promise<FlowDirectory> {
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries
      .filter(
        (entry) => !entry.isDirectory() && !entry.name.startsWith('.') && FLOW_FILE_PATTERN.test(entry.name),
      )
      .map((entry) => entry.name)
      .sort();
  } catch (err) {
    return {
      flows: [],
      problems: fileProblem(dir, `flow directory cannot be read: ${describeFsError(err)}`).problems,
    };
  }
  const flows: LoadedFlow[] = [];
  const problems: FlowProblem[] = [];
  for (const name of names) {
    const result = await loadFlowFile(join(dir, name));
    if (result.ok) flows.push({ file: result.file, flow: result.flow, hash: result.hash });
    else problems.push(...result.problems);
  }
  return { flows, problems };
}

function fileProblem(file: string, reason: string): { ok: false; problems: FlowProblem[] } {
  return { ok: false, problems: [{ file, line: 1, field: '(file)', reason }] };
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'ENOTDIR') return 'not a directory';
  return (err as Error).message;
}

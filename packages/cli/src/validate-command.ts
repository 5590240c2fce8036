import { stat } from 'node:fs/promises';
import { formatProblem, loadFlowDirectory, loadFlowFile, type FlowProblem } from '@dicomflow/flows';
import { ExitCode, type CliOutput } from './cli-output.js';

/**
 * `dicomflow validate <dir|file>...`: checks every flow file named or found directly in a named folder, as
 * the fingerprinter would load it. Prints each problem as `file:line: field: reason`, then a summary.
 * Exit code 1 when there is any problem.
 */
export async function validateCommand(paths: readonly string[], output: CliOutput): Promise<ExitCode> {
  let valid = 0;
  const problems: FlowProblem[] = [];
  for (const path of paths) {
    if (await isDirectory(path)) {
      const loaded = await loadFlowDirectory(path);
      valid += loaded.flows.length;
      problems.push(...loaded.problems);
    } else {
      const loaded = await loadFlowFile(path);
      if (loaded.ok) valid += 1;
      else problems.push(...loaded.problems);
    }
  }
  for (const problem of problems) output.out(formatProblem(problem));
  const invalidFiles = new Set(problems.map((problem) => problem.file)).size;
  if (problems.length > 0) {
    output.out(
      `${plural(problems.length, 'problem')} in ${plural(invalidFiles, 'file')}; ${plural(valid, 'valid flow')}`,
    );
    return ExitCode.problems;
  }
  output.out(valid === 0 ? `OK: no flow files found (*.yaml, *.yml)` : `OK: ${plural(valid, 'valid flow')}`);
  return ExitCode.ok;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    // Not there or not readable: loading it as a file reports why.
    return false;
  }
}

/** `3 problems`, `1 problem`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

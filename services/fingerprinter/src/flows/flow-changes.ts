import { basename } from 'node:path';
import type { FlowProblem } from '@dicomflow/flows';
import type { Logger } from '@dicomflow/runtime';
import type { FlowSnapshot } from './flow-snapshot.js';

/**
 * Logs what a reload changed: flows added, changed and removed at info, files that became invalid (or
 * whose problems changed) at warn with file, line, field and reason (and whether the flow's last valid
 * version keeps running), a directory that cannot be read at
 * error. A reload that changed nothing logs nothing, so periodic rescans stay quiet.
 */
export function logFlowChanges(logger: Logger, before: FlowSnapshot, after: FlowSnapshot): void {
  if (after.directoryError !== before.directoryError) {
    if (after.directoryError === undefined) logger.info('flow directory readable again');
    else logger.error({ reason: after.directoryError }, 'flow directory cannot be read; no flow is active');
  }
  const oldFlows = new Map(before.flows.map((loaded) => [basename(loaded.file), loaded]));
  const newFlows = new Map(after.flows.map((loaded) => [basename(loaded.file), loaded]));
  const oldProblems = problemsByFile(before.problems);
  const newProblems = problemsByFile(after.problems);
  for (const [file, loaded] of newFlows) {
    const previous = oldFlows.get(file);
    if (previous?.hash === loaded.hash) continue;
    logger.info(
      {
        file,
        name: loaded.flow.name,
        version: loaded.flow.version,
        priority: loaded.flow.priority,
        hash: loaded.hash,
      },
      previous === undefined ? 'flow loaded' : 'flow changed',
    );
  }
  for (const [file, problems] of newProblems) {
    if (JSON.stringify(problems) === JSON.stringify(oldProblems.get(file))) continue;
    for (const { line, field, reason } of problems) {
      logger.warn(
        { file, line, field, reason },
        newFlows.has(file)
          ? 'flow file became invalid; its last valid version keeps running'
          : 'flow file invalid; skipped',
      );
    }
  }
  for (const file of oldFlows.keys()) {
    if (!newFlows.has(file) && !newProblems.has(file)) logger.info({ file }, 'flow removed');
  }
  for (const file of oldProblems.keys()) {
    if (!newFlows.has(file) && !newProblems.has(file)) logger.info({ file }, 'invalid flow file removed');
  }
}

function problemsByFile(problems: readonly FlowProblem[]): Map<string, FlowProblem[]> {
  const byFile = new Map<string, FlowProblem[]>();
  for (const problem of problems) {
    const file = basename(problem.file);
    byFile.set(file, [...(byFile.get(file) ?? []), problem]);
  }
  return byFile;
}

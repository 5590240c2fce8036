import { basename } from 'node:path';
import {
  formatProblem,
  loadFlowDirectory,
  matchFlow,
  type LoadedFlow,
  type MatchResult,
} from '@dicomflow/flows';
import type { TriggerMap } from '@dicomflow/messages';
import { ExitCode, type CliOutput } from './cli-output.js';
import { readDicomInputs } from './dicom-inputs.js';
import { plural } from './validate-command.js';

/** What `dicomflow match` works on. */
export interface MatchOptions {
  /** The flow directory, as the fingerprinter's FLOW_DIRECTORY. */
  readonly flowsDir: string;
  /** DICOM files or folders: one group of files, as one receipt would hold them. */
  readonly inputs: readonly string[];
}

/**
 * `dicomflow match --flows <dir> <dicom files or folders>`: dry-runs matching of every valid flow in the
 * directory against the given DICOM files taken as one receipt, and prints per flow whether it triggers,
 * which trigger map failed, and the files the run would take. Invalid flow files and files that are not
 * DICOM are reported on stderr and left out. Exit code 1 when a flow file is invalid, 2 when there is no
 * DICOM file to match.
 */
export async function matchCommand(options: MatchOptions, output: CliOutput): Promise<ExitCode> {
  const { flows, problems } = await loadFlowDirectory(options.flowsDir);
  for (const problem of problems) output.err(`invalid flow, skipped: ${formatProblem(problem)}`);
  const { instances, skipped } = await readDicomInputs(options.inputs);
  for (const input of skipped) output.err(`not a usable DICOM file, skipped: ${input.path}: ${input.reason}`);
  if (instances.length === 0) {
    output.err('no DICOM files to match');
    return ExitCode.usage;
  }
  output.out(
    `${plural(instances.length, 'DICOM file')}, ${plural(flows.length, 'valid flow')} in ${options.flowsDir}`,
  );
  for (const loaded of flows) {
    output.out('');
    for (const line of describeMatch(loaded, matchFlow(loaded.flow, instances), instances.length))
      output.out(line);
  }
  return problems.length > 0 ? ExitCode.problems : ExitCode.ok;
}

/** The lines `dicomflow match` prints for one flow. */
export function describeMatch(loaded: LoadedFlow, result: MatchResult, fileCount: number): string[] {
  const { flow } = loaded;
  const label = `${basename(loaded.file)}${flow.name === '' ? '' : ` (${flow.name})`}`;
  if (flow.triggers.length === 0) {
    return [`${label}: not triggered: the flow has no triggers, and a flow without triggers never runs`];
  }
  const lines: string[] = [];
  if (result.triggered) {
    lines.push(
      `${label}: TRIGGERED at priority ${flow.priority}, takes ${result.selected.length} of ${fileCount} files`,
    );
  } else {
    const failed = result.failedMaps.map((index) => `triggers[${index}]`).join(', ');
    lines.push(`${label}: not triggered: ${failed} matched no file`);
  }
  flow.triggers.forEach((map, index) => {
    const count = result.mapMatchCounts[index] ?? 0;
    lines.push(
      `  triggers[${index}] ${describeMap(map)}: ${count === 0 ? 'no file' : plural(count, 'file')}`,
    );
  });
  if (result.excluded.length > 0) {
    lines.push(`  excluded by ~ patterns: ${plural(result.excluded.length, 'file')}`);
    for (const member of result.excluded) lines.push(`    ${member}`);
  }
  if (result.triggered) {
    lines.push('  would take:');
    for (const member of result.selected) lines.push(`    ${member}`);
  }
  return lines;
}

/** `{Modality: "CT", SeriesDescription: ["Head", "~Scout"]}`: a trigger map on one line. */
function describeMap(map: TriggerMap): string {
  const tags = Object.entries(map).map(
    ([key, patterns]) => `${key}: ${JSON.stringify(patterns).replace(/","/g, '", "')}`,
  );
  return `{${tags.join(', ')}}`;
}

export { ExitCode, processOutput, type CliOutput } from './cli-output.js';
export { readDicomInputs, type DicomInputs, type SkippedInput } from './dicom-inputs.js';
export { describeMatch, matchCommand, type MatchOptions } from './match-command.js';
export { runCli, USAGE } from './run-cli.js';
export {
  parseDestination,
  runsRerunCommand,
  runsResendCommand,
  trackerTokenOf,
  trackerUrlOf,
  type RunsTarget,
} from './runs-command.js';
export { validateCommand } from './validate-command.js';

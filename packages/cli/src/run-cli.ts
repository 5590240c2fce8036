import { parseArgs } from 'node:util';
import { ExitCode, type CliOutput } from './cli-output.js';
import { deadListCommand, deadReplayCommand } from './dead-command.js';
import { matchCommand } from './match-command.js';
import { parseDestination, runsRerunCommand, runsResendCommand } from './runs-command.js';
import { validateCommand } from './validate-command.js';

/** What `dicomflow help` prints. */
export const USAGE = [
  'Usage:',
  '  dicomflow validate <dir|file>...',
  '      Check flow files (a folder: its *.yaml/*.yml files). Prints file:line: field: reason per problem;',
  '      exit code 1 if there is any.',
  '  dicomflow match --flows <dir> <dicom files or folders>...',
  '      Dry-run matching: take the DICOM files as one received group and print, per flow, whether it',
  '      triggers, which trigger map failed, and the files it would take.',
  '  dicomflow dead list [--json]',
  "      The dead-lettered messages of the suite's queues (RABBIT_* and RABBIT_QUEUE_PREFIX as the",
  '      services read them): queue, message id, reason, run, age, last error.',
  '  dicomflow dead replay <id>... | --queue <queue> | --all',
  '      Put dead letters back on the queue each died in, with fresh attempts (after fixing the cause).',
  '  dicomflow runs resend <runId> [--destination host:port:AET|<DICOMweb url>]... [--tracker <url>] [--json]',
  "      Deliver a sent or failed run's stored output again, every instance: to the run's own destinations,",
  '      or only to the given ones (DICOM nodes, or DICOMweb servers by base URL). Prints the resend id.',
  '  dicomflow runs rerun <runId> [--tracker <url>] [--json]',
  "      Run a sent or failed run's flow again on the same receipt, with the flow file as loaded now (after",
  '      fixing it). Prints the new run id.',
  '      Both ask the flow-tracker (default: its HTTP_HOST and HTTP_PORT as it reads them) with its API token',
  '      (TRACKER_API_TOKEN or TRACKER_API_TOKEN_FILE, from conf.d and the environment); exit code 1 when it',
  '      refuses (unknown run, run in progress, nothing to resend, no or a wrong token), 2 when it cannot be',
  '      reached.',
  '  dicomflow help',
].join('\n');

/**
 * Runs the `dicomflow` command with `args` (without `node` and the script) and returns its exit code.
 * Never throws for bad input: it prints why and returns {@link ExitCode.usage}.
 */
export async function runCli(args: readonly string[], output: CliOutput): Promise<ExitCode> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case 'validate':
        return await runValidate(rest, output);
      case 'match':
        return await runMatch(rest, output);
      case 'dead':
        return await runDead(rest, output);
      case 'runs':
        return await runRuns(rest, output);
      case 'help':
      case '--help':
      case '-h':
        output.out(USAGE);
        return ExitCode.ok;
      case undefined:
        return usageError('no command given', output);
      default:
        return usageError(`unknown command: ${command}`, output);
    }
  } catch (err) {
    // parseArgs throws TypeErrors with codes ERR_PARSE_ARGS_*: they describe a usage mistake.
    if ((err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true) {
      return usageError((err as Error).message, output);
    }
    throw err;
  }
}

async function runValidate(args: readonly string[], output: CliOutput): Promise<ExitCode> {
  const { positionals } = parseArgs({ args: [...args], options: {}, allowPositionals: true, strict: true });
  if (positionals.length === 0) return usageError('validate needs at least one folder or file', output);
  return validateCommand(positionals, output);
}

async function runMatch(args: readonly string[], output: CliOutput): Promise<ExitCode> {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: { flows: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.flows === undefined) return usageError('match needs --flows <dir>', output);
  if (positionals.length === 0) return usageError('match needs at least one DICOM file or folder', output);
  return matchCommand({ flowsDir: values.flows, inputs: positionals }, output);
}

async function runDead(args: readonly string[], output: CliOutput): Promise<ExitCode> {
  const [sub, ...rest] = args;
  const target = { env: process.env };
  if (sub === 'list') {
    const { values } = parseArgs({ args: [...rest], options: { json: { type: 'boolean' } }, strict: true });
    return deadListCommand(target, values.json === true, output);
  }
  if (sub === 'replay') {
    const { values, positionals } = parseArgs({
      args: [...rest],
      options: { queue: { type: 'string' }, all: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
    const given = [positionals.length > 0, values.queue !== undefined, values.all === true].filter(Boolean);
    if (given.length !== 1)
      return usageError('dead replay needs message ids, or --queue <queue>, or --all', output);
    if (values.queue !== undefined)
      return deadReplayCommand(target, { kind: 'queue', queue: values.queue }, output);
    if (values.all === true) return deadReplayCommand(target, { kind: 'all' }, output);
    return deadReplayCommand(target, { kind: 'ids', ids: positionals }, output);
  }
  return usageError(sub === undefined ? 'dead needs list or replay' : `unknown dead command: ${sub}`, output);
}

async function runRuns(args: readonly string[], output: CliOutput): Promise<ExitCode> {
  const [sub, ...rest] = args;
  if (sub !== 'resend' && sub !== 'rerun')
    return usageError(
      sub === undefined ? 'runs needs resend or rerun' : `unknown runs command: ${sub}`,
      output,
    );
  const { values, positionals } = parseArgs({
    args: [...rest],
    options: {
      tracker: { type: 'string' },
      json: { type: 'boolean' },
      destination: { type: 'string', multiple: true },
    },
    allowPositionals: true,
    strict: true,
  });
  const [runId, ...extra] = positionals;
  if (runId === undefined || extra.length > 0) return usageError(`runs ${sub} needs one run id`, output);
  const target = {
    env: process.env,
    ...(values.tracker === undefined ? {} : { trackerUrl: values.tracker }),
  };
  if (sub === 'rerun') {
    // A rerun goes where the flow file says (fix the file to change that).
    if (values.destination !== undefined) return usageError('runs rerun takes no --destination', output);
    return runsRerunCommand(target, runId, values.json === true, output);
  }
  let destinations;
  try {
    destinations = (values.destination ?? []).map(parseDestination);
  } catch (err) {
    return usageError((err as Error).message, output);
  }
  return runsResendCommand(target, runId, destinations, values.json === true, output);
}

function usageError(message: string, output: CliOutput): ExitCode {
  output.err(`dicomflow: ${message}`);
  output.err(USAGE);
  return ExitCode.usage;
}

/** Where a command writes its lines; the bin writes to stdout/stderr, tests collect them. */
export interface CliOutput {
  /** A line of the command's result. */
  out(line: string): void;
  /** A line about something that went wrong or was skipped. */
  err(line: string): void;
}

/** Exit codes of the `dicomflow` command. */
export const ExitCode = {
  ok: 0,
  /** The command ran and found problems (invalid flow files). */
  problems: 1,
  /** The command could not run: bad arguments, nothing to work on. */
  usage: 2,
} as const;

/** One of {@link ExitCode}. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A {@link CliOutput} on the process's stdout and stderr. */
export const processOutput: CliOutput = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

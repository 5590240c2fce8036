/** A dcmtk (or other) command exited with a failure; carries what it printed so tests can show why. */
export class CommandFailedError extends Error {
  override readonly name = 'CommandFailedError';
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${command} ${args.join(' ')} exited with ${code ?? 'a signal'}: ${stderr.trim().slice(0, 2000)}`);
  }
}

/** A TCP port did not accept connections in time (or the process meant to open it exited first). */
export class PortNotReadyError extends Error {
  override readonly name = 'PortNotReadyError';
}

/** A file is not what a helper expects (no Part-10 meta group, unreadable meta element, ...). */
export class FixtureError extends Error {
  override readonly name = 'FixtureError';
}

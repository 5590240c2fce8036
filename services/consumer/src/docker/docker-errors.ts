import { TransientError } from '@dicomflow/runtime';

/** The HTTP status of a failed Engine API call (dockerode sets `statusCode`), if it got that far. */
export function dockerStatus(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number')
    return err.statusCode;
  return undefined;
}

/** The Engine API's own message of a failed call (`json.message`), else the error's message. */
export function dockerMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'json' in err) {
    const json = (err as { json?: unknown }).json;
    if (typeof json === 'object' && json !== null && 'message' in json && typeof json.message === 'string')
      return json.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** True for "no such container / image / volume". */
export function isNotFound(err: unknown): boolean {
  return dockerStatus(err) === 404;
}

/**
 * Wraps a failure to reach or use the Docker engine as transient (the job is retried with backoff):
 * a refused socket, a reset, a 5xx. Client errors (4xx) are returned unchanged for the caller to judge.
 */
export function asTransientDockerError(err: unknown, what: string): unknown {
  const status = dockerStatus(err);
  if (status !== undefined && status < 500) return err;
  return new TransientError(`Docker engine: ${what} failed: ${dockerMessage(err)}`, { cause: err });
}

/**
 * True when the engine refused a container's device request because it has no driver for it (Docker's
 * "could not select device driver ... with capabilities: [[gpu]]").
 */
export function isDeviceRequestRefusal(err: unknown): boolean {
  return /could not select device driver|unknown or invalid runtime name: nvidia/i.test(dockerMessage(err));
}

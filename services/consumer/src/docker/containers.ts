import type Docker from 'dockerode';
import { asTransientDockerError, dockerStatus, isNotFound } from './docker-errors.js';

/** Removes a container (killing it if it runs) with its anonymous volumes; one that is not there is fine. */
export async function removeContainer(docker: Docker, nameOrId: string): Promise<boolean> {
  try {
    await docker.getContainer(nameOrId).remove({ force: true, v: true });
    return true;
  } catch (err) {
    // 404: already gone; 409: another call is removing it right now.
    if (isNotFound(err) || dockerStatus(err) === 409) return false;
    throw err;
  }
}

/** How a container run ended: its exit code, or stopped at the timeout. */
export type WaitResult =
  { readonly kind: 'exited'; readonly exitCode: number } | { readonly kind: 'timeout' };

/**
 * Waits for the container to exit, at most `timeoutMs`; on timeout it is killed. An abort (the consumer
 * stops) kills it too and rejects with the signal's reason.
 */
export async function waitForExit(
  container: Docker.Container,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<WaitResult> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const exited = container.wait().then((body: unknown): WaitResult => {
    const code = (body as { StatusCode?: unknown }).StatusCode;
    return { kind: 'exited', exitCode: typeof code === 'number' ? code : -1 };
  });
  const timedOut = new Promise<WaitResult>((resolve) => {
    timer = setTimeout(() => {
      resolve({ kind: 'timeout' });
    }, timeoutMs);
  });
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      reject(signal.reason as Error);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const result = await Promise.race([exited, timedOut, aborted]);
    if (result.kind === 'timeout') await killQuietly(container);
    return result;
  } catch (err) {
    await killQuietly(container);
    throw err;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
    exited.catch(() => undefined);
  }
}

async function killQuietly(container: Docker.Container): Promise<void> {
  try {
    await container.kill();
  } catch (err) {
    // 409: not running any more (it exited meanwhile); 404: removed.
    if (!isNotFound(err) && dockerStatus(err) !== 409) throw err;
  }
}

/**
 * The end of a container's log (stdout and stderr interleaved as written), at most `maxChars` characters
 * from its last `lines` lines. The Engine API frames non-TTY logs with an 8-byte header per write.
 */
export async function readLogTail(
  container: Docker.Container,
  lines: number,
  maxChars: number,
): Promise<string> {
  const raw = await container.logs({ stdout: true, stderr: true, tail: lines, follow: false });
  const text = demuxLogs(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)));
  return text.length > maxChars ? text.slice(text.length - maxChars) : text;
}

/** Joins the payloads of Docker's multiplexed stream frames ([stream, 0, 0, 0, size(4, BE)] + payload). */
export function demuxLogs(raw: Buffer): string {
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= raw.length) {
    const stream = raw[at];
    const size = raw.readUInt32BE(at + 4);
    if (stream === undefined || stream > 2 || raw[at + 1] !== 0 || raw[at + 2] !== 0 || raw[at + 3] !== 0) {
      // Not framed (a TTY container): the bytes are the log as is.
      return raw.toString('utf8');
    }
    parts.push(raw.subarray(at + 8, Math.min(raw.length, at + 8 + size)));
    at += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** The last `count` lines of `text` (without a trailing empty line). */
export function lastLines(text: string, count: number): string {
  const lines = text.replace(/\n$/, '').split('\n');
  return lines.slice(-count).join('\n');
}

/** The container's memory limit (0: none) when the kernel killed it for going past it; else undefined. */
export async function oomKilledLimit(container: Docker.Container): Promise<number | undefined> {
  try {
    const info = await container.inspect();
    return info.State.OOMKilled ? (info.HostConfig.Memory ?? 0) : undefined;
  } catch {
    return undefined; // then it fails as an exit code, which it also is
  }
}

/** A byte count for people: whole MiB, or GiB with one decimal. */
export function formatBytes(bytes: number): string {
  const mib = bytes / 1024 ** 2;
  return mib >= 1024 ? `${(mib / 1024).toFixed(mib % 1024 === 0 ? 0 : 1)} GiB` : `${Math.round(mib)} MiB`;
}

/** True while the container exists (another attempt of its job may have removed it). */
export async function stillExists(container: Docker.Container): Promise<boolean> {
  try {
    await container.inspect();
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw asTransientDockerError(err, 'inspecting the container');
  }
}

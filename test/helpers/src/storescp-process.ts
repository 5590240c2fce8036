import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { PortNotReadyError } from './errors.js';

const POLL_MS = 50;
const DEFAULT_STOP_GRACE_MS = 5_000;

function tryConnect(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** A TCP port that was free a moment ago (the OS picks it; there is a small race until it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** Resolves once nothing listens on `127.0.0.1:port` any more; throws after `timeoutMs`. */
export async function waitForPortClosed(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await tryConnect(port, '127.0.0.1')) {
    if (Date.now() > deadline) throw new PortNotReadyError(`port ${port} still listens`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * Resolves once `host:port` accepts a TCP connection; throws {@link PortNotReadyError} after `timeoutMs`,
 * or as soon as `gaveUp()` returns a reason (e.g. the process meant to listen has exited).
 */
export async function waitForPort(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 15_000,
  gaveUp: () => string | undefined = () => undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await tryConnect(port, host)) return;
    const reason = gaveUp();
    if (reason !== undefined) throw new PortNotReadyError(`${host}:${port} never opened: ${reason}`);
    if (Date.now() > deadline)
      throw new PortNotReadyError(`${host}:${port} did not accept connections in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export interface DcmtkStorescpOptions {
  port: number;
  /** Received files are written here (-od), created if missing. */
  outDir: string;
  aeTitle?: string;
  /** One child process per association (--fork). */
  fork?: boolean;
  extraArgs?: string[];
  /** e.g. LD_PRELOAD of the nodelay shim. */
  env?: NodeJS.ProcessEnv;
  /** Write each dataset exactly as received (+B); default true, so received datasets compare byte for byte. */
  bitPreserving?: boolean;
}

export interface RunningProcess {
  readonly pid: number;
  /** SIGTERM to the process group (forked children included), SIGKILL after a grace period. */
  stop(): Promise<void>;
}

/**
 * Starts a separate process (in its own process group) and resolves once `port` accepts connections;
 * stops it again if it never does. Used for dcmtk storescp and, by the bench, for our storescp.
 */
export async function startListeningProcess(
  command: string,
  args: readonly string[],
  options: {
    port: number;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    /** How long to wait for the port (default 15 s). */
    timeoutMs?: number;
    /** How long stop() waits after SIGTERM before SIGKILL (default 5 s). */
    stopGraceMs?: number;
  },
): Promise<RunningProcess> {
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keepTail = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-16_384);
  };
  child.stdout.on('data', keepTail);
  child.stderr.on('data', keepTail);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited with ${code ?? signal ?? 'unknown'}: ${output.trim().slice(-2000)}`;
      resolve();
    });
    child.once('error', (error) => {
      exited = error.message;
      resolve();
    });
  });
  const pid = child.pid;
  const stop = async (): Promise<void> => {
    if (exited !== undefined || pid === undefined) return;
    const signalGroup = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-pid, signal);
      } catch {
        // already gone
      }
    };
    signalGroup('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        signalGroup('SIGKILL');
        resolve();
      }, options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
    });
    await Promise.race([exit, killed]);
    clearTimeout(timer);
    await exit;
    // Forked children outlive a parent that exited on SIGTERM; make sure none is left.
    signalGroup('SIGKILL');
  };
  try {
    await waitForPort(options.port, '127.0.0.1', options.timeoutMs ?? 15_000, () => exited);
  } catch (error) {
    await stop();
    throw error;
  }
  if (pid === undefined) throw new PortNotReadyError(`${command} has no pid`);
  return { pid, stop };
}

/**
 * Starts dcmtk's storescp on `port`, writing what it receives to `outDir`. It accepts every transfer
 * syntax dcmtk knows (+xa) and unknown SOP classes (-pm). Resolves once the port accepts connections.
 */
export async function startDcmtkStorescp(opts: DcmtkStorescpOptions): Promise<RunningProcess> {
  await mkdir(opts.outDir, { recursive: true });
  const args = ['-aet', opts.aeTitle ?? 'STORESCP', '-od', opts.outDir, '+xa', '-pm'];
  if (opts.bitPreserving ?? true) args.push('+B');
  if (opts.fork === true) args.push('--fork');
  args.push(...(opts.extraArgs ?? []), String(opts.port));
  return startListeningProcess('storescp', args, { port: opts.port, ...(opts.env ? { env: opts.env } : {}) });
}

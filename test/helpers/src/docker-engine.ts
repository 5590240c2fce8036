import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from './run-command.js';

/** A Docker engine of a test's own, on a socket of its own, which the test may restart. */
export interface DockerEngine {
  /** `unix://...`: its DOCKER_HOST. */
  readonly host: string;
  /** Stops it as `systemctl stop docker` does (SIGTERM: running containers are stopped, then killed). */
  stop(): Promise<void>;
  /** Starts it again on the same socket and data; resolves once it answers. */
  start(): Promise<void>;
  /** Stops it and removes its data (images included). */
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;

/**
 * Starts a dockerd of its own beside the machine's (which is never touched): its own socket, data root,
 * exec root and containerd namespace, no bridge and no iptables (as this machine's engine runs). Needs
 * root. A short folder under /tmp keeps the sockets' paths within the kernel's limit.
 */
export async function startDockerEngine(): Promise<DockerEngine> {
  const dir = join('/tmp', `dfd-${randomBytes(3).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  const host = `unix://${join(dir, 'docker.sock')}`;
  const namespace = `dicomflow-test-${randomBytes(3).toString('hex')}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const start = async (): Promise<void> => {
    const proc = spawn(
      'dockerd',
      [
        '--host',
        host,
        '--data-root',
        join(dir, 'data'),
        '--exec-root',
        join(dir, 'exec'),
        '--pidfile',
        join(dir, 'docker.pid'),
        '--containerd-namespace',
        namespace,
        '--containerd-plugins-namespace',
        `${namespace}-plugins`,
        '--bridge=none',
        '--iptables=false',
        '--ip-masq=false',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    const state = { gone: false };
    exited = new Promise((resolve) => {
      proc.once('exit', () => {
        state.gone = true;
        resolve();
      });
    });
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (state.gone) throw new Error(`dockerd exited: ${output}`);
      const info = await runCommand('docker', ['-H', host, 'version', '--format', '{{.Server.Version}}']);
      if (info.code === 0) return;
      if (Date.now() > deadline) throw new Error(`dockerd did not answer within ${START_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(killer);
  };

  await start();
  return {
    host,
    stop,
    start,
    async close() {
      // Its containers first, so that no shim is left behind.
      const ids = await runCommand('docker', ['-H', host, 'ps', '-aq']);
      const list = ids.stdout.split('\n').filter(Boolean);
      if (list.length > 0) await runCommand('docker', ['-H', host, 'rm', '-f', ...list]);
      await stop();
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

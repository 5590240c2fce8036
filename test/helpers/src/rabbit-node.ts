import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from './run-command.js';
import { freePort, waitForPort, waitForPortClosed } from './storescp-process.js';

/** A RabbitMQ node of a test's own, which the test may stop and start again (same port, same data). */
export interface RabbitNode {
  /** Its Erlang node name, for `rabbitmqctl -n`. */
  readonly node: string;
  readonly port: number;
  /** A graceful stop (SIGTERM), as `systemctl stop` does; resolves once it is gone. */
  stop(): Promise<void>;
  /** Starts it again; resolves once it accepts AMQP connections. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 120_000;

/** The uid and gid of a system user, when this process runs as root and the user exists. */
async function systemUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const result = await runCommand('id', ['-u', name]);
  const group = await runCommand('id', ['-g', name]);
  if (result.code !== 0 || group.code !== 0) return undefined;
  return { uid: Number(result.stdout.trim()), gid: Number(group.stdout.trim()) };
}

/**
 * Starts a RabbitMQ node of its own (Debian's rabbitmq-server) beside the machine's: its own node name, AMQP
 * port, data and log folders, no plugins. The machine's node is never touched. As root, Debian's wrapper
 * runs the node as the `rabbitmq` user, so its folders belong to that user.
 */
export async function startRabbitNode(): Promise<RabbitNode> {
  const dir = await mkdtemp(join(tmpdir(), 'dicomflow-rabbit-'));
  const port = await freePort();
  const distPort = await freePort();
  const node = `dicomflow-test-${randomBytes(3).toString('hex')}@localhost`;
  await mkdir(join(dir, 'mnesia'));
  await mkdir(join(dir, 'log'));
  await writeFile(join(dir, 'enabled_plugins'), '[].\n');
  await writeFile(join(dir, 'rabbitmq.conf'), `listeners.tcp.local = 127.0.0.1:${port}\n`);
  const owner = await systemUser('rabbitmq');
  if (owner) {
    for (const path of ['', 'mnesia', 'log', 'enabled_plugins', 'rabbitmq.conf']) {
      await chown(join(dir, path), owner.uid, owner.gid);
    }
  }
  const env = {
    ...process.env,
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_PID_FILE: join(dir, 'rabbit.pid'),
  };
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const start = async (): Promise<void> => {
    const proc = spawn('rabbitmq-server', [], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child = proc;
    let gone = false;
    exited = new Promise((resolve) => {
      proc.once('exit', () => {
        gone = true;
        resolve();
      });
    });
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    await waitForPort(port, '127.0.0.1', START_TIMEOUT_MS, () =>
      gone ? `rabbitmq-server exited: ${output}` : undefined,
    );
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    // As `systemctl stop` does: the node shuts down cleanly (Debian's wrapper runs the VM under su, out
    // of reach of a signal to this process group). A kill is the fallback.
    const stopped = await runCommand('rabbitmqctl', ['-n', node, 'stop'], { timeoutMs: 60_000 });
    if (stopped.code !== 0) {
      try {
        process.kill(-(proc.pid ?? 0), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await exited;
    // The Erlang VM may outlive the wrapper for a moment: it is gone once the port refuses connections.
    await waitForPortClosed(port, 60_000);
  };

  await start();
  return {
    node,
    port,
    stop,
    start,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

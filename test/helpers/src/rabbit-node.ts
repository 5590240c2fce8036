import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from './run-command.js';
import { freePort, waitForPort, waitForPortClosed } from './storescp-process.js';

/** A RabbitMQ node of a test's own, which the test may stop and start again (same port, same data). */
export interface RabbitNode {
  /** Its Erlang node name, for `rabbitmqctl -n`. */
  readonly node: string;
  readonly port: number;
  /** The AMQPS port, when started with `tls` (else undefined). */
  readonly tlsPort: number | undefined;
  /** A graceful stop (SIGTERM), as `systemctl stop` does; resolves once it is gone. */
  stop(): Promise<void>;
  /** Starts it again; resolves once it accepts AMQP connections. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 120_000;

/** A TLS listener for {@link startRabbitNode}: PEM files (copied, so the node's user can read them). */
export interface RabbitTlsListener {
  /** CA(s) client certificates must chain to. */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** verify_peer + fail_if_no_peer_cert: a client without a certificate of the CA is refused. */
  readonly requireClientCert?: boolean;
}

/** What {@link startRabbitNode} starts beside the plain AMQP listener. */
export interface RabbitNodeOptions {
  /** Adds an AMQPS listener on a free port of its own. */
  readonly tls?: RabbitTlsListener;
}

/** The rabbitmq.conf lines of an AMQPS listener on `port` with the files in `dir`. */
function tlsListenerConfig(port: number, dir: string, requireClientCert: boolean): string {
  return [
    `listeners.ssl.default = 127.0.0.1:${port}`,
    `ssl_options.cacertfile = ${join(dir, 'ca.pem')}`,
    `ssl_options.certfile = ${join(dir, 'server.pem')}`,
    `ssl_options.keyfile = ${join(dir, 'server.key')}`,
    `ssl_options.verify = ${requireClientCert ? 'verify_peer' : 'verify_none'}`,
    `ssl_options.fail_if_no_peer_cert = ${String(requireClientCert)}`,
    'ssl_options.versions.1 = tlsv1.3',
    'ssl_options.versions.2 = tlsv1.2',
    '',
  ].join('\n');
}

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
export async function startRabbitNode(options: RabbitNodeOptions = {}): Promise<RabbitNode> {
  const dir = await mkdtemp(join(tmpdir(), 'dicomflow-rabbit-'));
  const port = await freePort();
  const distPort = await freePort();
  const node = `dicomflow-test-${randomBytes(3).toString('hex')}@localhost`;
  await mkdir(join(dir, 'mnesia'));
  await mkdir(join(dir, 'log'));
  await writeFile(join(dir, 'enabled_plugins'), '[].\n');
  const owned = ['', 'mnesia', 'log', 'enabled_plugins', 'rabbitmq.conf'];
  let conf = `listeners.tcp.local = 127.0.0.1:${port}\n`;
  const tlsPort = options.tls ? await freePort() : undefined;
  if (options.tls && tlsPort !== undefined) {
    const tlsDir = join(dir, 'tls');
    await mkdir(tlsDir);
    await copyFile(options.tls.caFile, join(tlsDir, 'ca.pem'));
    await copyFile(options.tls.certFile, join(tlsDir, 'server.pem'));
    await copyFile(options.tls.keyFile, join(tlsDir, 'server.key'));
    owned.push('tls', 'tls/ca.pem', 'tls/server.pem', 'tls/server.key');
    conf += tlsListenerConfig(tlsPort, tlsDir, options.tls.requireClientCert ?? false);
  }
  await writeFile(join(dir, 'rabbitmq.conf'), conf);
  const owner = await systemUser('rabbitmq');
  if (owner) {
    for (const path of owned) {
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
    for (const listening of tlsPort === undefined ? [port] : [port, tlsPort]) {
      await waitForPort(listening, '127.0.0.1', START_TIMEOUT_MS, () =>
        gone ? `rabbitmq-server exited: ${output}` : undefined,
      );
    }
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
    tlsPort,
    stop,
    start,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

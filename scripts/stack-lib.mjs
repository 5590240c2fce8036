// Starts DicomFlow's services as local processes (what `npm run stack` runs, and what end-to-end tests can
// use): `node services/<name>/dist/main.js` each, against the RabbitMQ, PostgreSQL, S3 and Docker engine
// named in the environment (local defaults otherwise), with their output prefixed by the service name.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';

/** The repository the services are started from. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// The service list and their HTTP ports are the config package's; it must be built like the services.
const config = await import('@dicomflow/config').catch((err) => {
  throw new Error('packages/config is not built: run `npm run build` first', { cause: err });
});

/** Every service, in data-path order. */
export const STACK_SERVICES = Object.freeze([...config.SERVICE_NAMES]);

/** Default HTTP port of each service (DESIGN.md "Every service"). */
export const DEFAULT_HTTP_PORTS = Object.freeze({ ...config.HTTP_PORT_DEFAULTS });

/**
 * Node flags a service runs with: the same as its `npm start` and its compose command (test/compose checks
 * all three). A 1 MiB young generation for the services that stream whole studies: the 64 KiB socket and
 * file buffers they go through are freed within microseconds instead of piling up until a larger young
 * generation fills, so the same cache-warm memory is reused (the sender: 40% less CPU, 20% sooner done
 * for a 105 MB study, bench/send/flow.mjs; the consumer in work-folder mode: overhead 1.49 s instead of
 * 1.84-2.06 s, bench/consumer; the receiver: see README, "The receiver").
 * The consumer and the sender also count buffers in V8's global heap limit instead of a separate 64 MB
 * external-memory limit that starts a full GC each time it is crossed: in archive mode the consumer ran ~30
 * of them per 105 MB job (2.2 s CPU per job, 0.7-0.9 s with the flag); the sender needs 10-20% less CPU.
 * `--expose-gc` lets the three of them free buffers that are already garbage while they stream a large
 * instance (the buffer reclaimer of @dicomflow/runtime: the consumer's peak with a 1 GB instance went from
 * 283 to 205 MB, bench/scale).
 */
export const NODE_FLAGS = Object.freeze({
  storescp: Object.freeze(['--max-semi-space-size=1', '--expose-gc']),
  sender: Object.freeze([
    '--max-semi-space-size=1',
    '--external-memory-accounted-in-global-limit',
    '--expose-gc',
  ]),
  consumer: Object.freeze([
    '--max-semi-space-size=1',
    '--external-memory-accounted-in-global-limit',
    '--expose-gc',
  ]),
});

/** How long a service gets after SIGTERM before it is killed (runService itself gives up after 8 s). */
const STOP_GRACE_MS = 10_000;

// Services run in process groups of their own (see `detached` below), so nothing else stops them if this
// process ends without stop(): a test runner that exits, an uncaught error. Whatever is still running then
// is killed here: SIGKILL, since with nobody left to read their output a service may not finish a graceful
// stop (seen now and then); the services are built to survive a kill (the spool is resumed at start). A
// SIGKILL of this process itself cannot be caught: such services must be stopped by pid.
const live = new Set();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * `services/<name>/dist/main.js` of a service.
 * @param {string} name
 * @param {string} [root]
 * @returns {string}
 */
export function entryPoint(name, root = REPO_ROOT) {
  return join(root, 'services', name, 'dist', 'main.js');
}

/**
 * Checks that every service has been built. Throws one error naming every service whose
 * `dist/main.js` is missing; returns the services whose sources are newer than their build.
 * @param {readonly string[]} services
 * @param {string} [root]
 * @returns {string[]}
 */
export function checkBuilt(services, root = REPO_ROOT) {
  const unknown = services.filter((name) => !STACK_SERVICES.includes(name));
  if (unknown.length > 0) {
    throw new Error(`unknown service(s): ${unknown.join(', ')} (known: ${STACK_SERVICES.join(', ')})`);
  }
  const missing = services.filter((name) => !existsSync(entryPoint(name, root)));
  if (missing.length > 0) {
    throw new Error(
      `not built: ${missing.map((name) => `services/${name}/dist/main.js`).join(', ')}; run \`npm run build\`` +
        ' (a service whose sources do not exist yet cannot run: start the others with --only)',
    );
  }
  return services.filter(
    (name) => newestSource(join(root, 'services', name, 'src')) > mtimeOf(entryPoint(name, root)),
  );
}

/**
 * The environment of one service: `env` (the caller's, e.g. process.env), the service's own HTTP port, and
 * local folders for what would otherwise point at container paths (/opt/dicomflow/..., /var/lib/...).
 * @param {string} name
 * @param {{ env?: NodeJS.ProcessEnv, root?: string, dataDir?: string, httpPort?: number }} [options]
 * @returns {NodeJS.ProcessEnv}
 */
export function serviceEnvironment(name, { env = process.env, root = REPO_ROOT, dataDir, httpPort } = {}) {
  const data = dataDir ?? join(root, '.tmp', 'stack');
  return {
    ...env,
    CONF_DIR: env.CONF_DIR ?? join(root, 'conf.d'),
    SPOOL_DIR: env.SPOOL_DIR ?? join(data, 'spool'),
    SENDER_SPOOL_DIR: env.SENDER_SPOOL_DIR ?? join(data, 'sender'),
    // The consumer stages jobs in a local work folder the engine bind-mounts (the faster mode), unless
    // the engine is remote and cannot see this machine's folders.
    CONSUMER_WORK_DIR:
      env.CONSUMER_WORK_DIR ?? (/^(tcp|ssh|https?):/.test(env.DOCKER_HOST ?? '') ? '' : join(data, 'work')),
    FLOW_DIRECTORY: env.FLOW_DIRECTORY ?? join(root, 'mounts', 'flows'),
    STATIC_DIRECTORY: env.STATIC_DIRECTORY ?? join(root, 'mounts', 'static'),
    HTTP_PORT: String(httpPort ?? DEFAULT_HTTP_PORTS[name]),
  };
}

/**
 * Starts `services` as child processes and waits until each answers `/readyz` (or only `/healthz` with
 * `waitFor: 'healthz'`). Rejects, after stopping what it started, when one is not built, exits or does not
 * come up in `readyTimeoutMs`.
 *
 * @param {object} [options]
 * @param {NodeJS.ProcessEnv} [options.env] environment of every service (default process.env)
 * @param {readonly string[]} [options.services] which services (default all seven)
 * @param {Record<string, number>} [options.httpPorts] HTTP port per service (0 = any free port)
 * @param {string} [options.dataDir] where the spool goes (default .tmp/stack)
 * @param {(service: string, line: string, stream: 'stdout' | 'stderr') => void} [options.onLine] each output line
 * @param {(service: string, code: number | null, signal: string | null) => void} [options.onExit] an unexpected exit
 * @param {'healthz' | 'readyz'} [options.waitFor]
 * @param {number} [options.readyTimeoutMs]
 * @param {boolean} [options.ensureBuckets] create the S3 buckets first (default true)
 * @returns {Promise<{ urls: Record<string, string>, ports: Record<string, number>, pids: Record<string, number>, stop: () => Promise<Record<string, number | null>> }>}
 */
export async function startStack(options = {}) {
  const {
    env = process.env,
    services = STACK_SERVICES,
    httpPorts = {},
    dataDir = join(REPO_ROOT, '.tmp', 'stack'),
    onLine = () => {},
    onExit = () => {},
    // Ready, not just alive: its broker, database, S3 and (the consumer) Docker engine answer.
    waitFor = 'readyz',
    readyTimeoutMs = 60_000,
    ensureBuckets = true,
  } = options;
  checkBuilt(services);
  mkdirSync(join(dataDir, 'spool'), { recursive: true });
  if (ensureBuckets) await runEnsureBuckets(serviceEnvironment('sender', { env, dataDir }), onLine);

  /** @type {Map<string, { child: import('node:child_process').ChildProcess, exit: Promise<number | null>, exited: boolean, port: number | undefined }>} */
  const running = new Map();
  let stopping = false;

  const stop = async () => {
    stopping = true;
    const codes = {};
    await Promise.all(
      [...running].map(async ([name, proc]) => {
        if (!proc.exited) proc.child.kill('SIGTERM');
        const timer = setTimeout(() => proc.child.kill('SIGKILL'), STOP_GRACE_MS);
        codes[name] = await proc.exit;
        clearTimeout(timer);
      }),
    );
    return codes;
  };

  try {
    for (const name of services) {
      const requestedPort = httpPorts[name] ?? DEFAULT_HTTP_PORTS[name];
      const child = spawn(process.execPath, [...(NODE_FLAGS[name] ?? []), entryPoint(name)], {
        cwd: REPO_ROOT,
        env: serviceEnvironment(name, { env, dataDir, httpPort: requestedPort }),
        stdio: ['ignore', 'pipe', 'pipe'],
        // A process group of its own: Ctrl-C in a terminal reaches only the stack, which then sends each
        // service one SIGTERM (a second signal would make a service give up draining).
        detached: true,
      });
      const proc = {
        child,
        exited: false,
        port: requestedPort === 0 ? undefined : requestedPort,
        exit: undefined,
      };
      proc.exit = new Promise((resolveExit) => {
        child.once('exit', (code, signal) => {
          proc.exited = true;
          live.delete(child);
          if (!stopping) onExit(name, code, signal);
          resolveExit(code ?? (signal ? 128 : null));
        });
        child.once('error', (err) => {
          onLine(name, `cannot start: ${err.message}`, 'stderr');
          proc.exited = true;
          live.delete(child);
          resolveExit(null);
        });
      });
      for (const [stream, source] of [
        ['stdout', child.stdout],
        ['stderr', child.stderr],
      ]) {
        createInterface({ input: source, crlfDelay: Infinity }).on('line', (line) => {
          // With HTTP_PORT=0 the service says which port it bound.
          if (proc.port === undefined) proc.port = listeningPort(line);
          onLine(name, line, stream);
        });
      }
      running.set(name, proc);
      live.add(child);
    }
    await Promise.all(services.map((name) => waitUntilUp(name, running.get(name), waitFor, readyTimeoutMs)));
  } catch (err) {
    await stop();
    throw err;
  }

  const ports = Object.fromEntries([...running].map(([name, proc]) => [name, proc.port]));
  return {
    ports,
    urls: Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, `http://127.0.0.1:${port}`])),
    pids: Object.fromEntries([...running].map(([name, proc]) => [name, proc.child.pid])),
    stop,
  };
}

async function waitUntilUp(name, proc, path, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (proc.exited) {
      throw new Error(`${name} exited with code ${await proc.exit} before it was up (its output is above)`);
    }
    if (proc.port !== undefined) {
      try {
        const response = await globalThis.fetch(`http://127.0.0.1:${proc.port}/${path}`);
        if (response.ok) return;
        last = `/${path} answered ${response.status}: ${await response.text()}`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 250));
  }
  throw new Error(`${name} did not come up within ${timeoutMs} ms (${last})`);
}

function runEnsureBuckets(env, onLine) {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'ensure-buckets.mjs')], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const [stream, source] of [
      ['stdout', child.stdout],
      ['stderr', child.stderr],
    ]) {
      createInterface({ input: source, crlfDelay: Infinity }).on('line', (line) =>
        onLine('buckets', line, stream),
      );
    }
    child.once('error', rejectRun);
    child.once('exit', (code) => {
      if (code === 0) resolveRun();
      else rejectRun(new Error(`creating the S3 buckets failed (exit ${code}); is S3 reachable?`));
    });
  });
}

/**
 * The port of a runtime `http server listening` log line, or undefined.
 * @param {string} line
 * @returns {number | undefined}
 */
export function listeningPort(line) {
  if (!line.startsWith('{')) return undefined;
  try {
    const entry = JSON.parse(line);
    return entry.msg === 'http server listening' && typeof entry.port === 'number' ? entry.port : undefined;
  } catch {
    return undefined;
  }
}

const LEVEL_WIDTH = 5;

/**
 * One short line for a pino JSON log line: `HH:MM:SS LEVEL message key=value ...` (time, level, message,
 * then the other fields; `service`, `pid`, `hostname` dropped). Other lines come back as they are.
 * @param {string} line
 * @returns {string}
 */
export function prettyLogLine(line) {
  if (!line.startsWith('{')) return line;
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof entry !== 'object' || entry === null || !('msg' in entry)) return line;
  const { time, level, msg, service: _service, pid: _pid, hostname: _hostname, err, ...rest } = entry;
  const clock = typeof time === 'string' ? time.slice(11, 19) : '';
  const fields = Object.entries(rest).map(([key, value]) => `${key}=${short(value)}`);
  // An error is an object (pino's serializer) or, from a handler that logged only its text, a string.
  const error =
    typeof err === 'string'
      ? ` err=${short(err)}`
      : err && typeof err === 'object'
        ? ` err=${short(err.message ?? err)}`
        : '';
  return `${clock} ${String(level ?? '')
    .toUpperCase()
    .padEnd(LEVEL_WIDTH)} ${msg}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}${error}`;
}

function short(value) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

function mtimeOf(path) {
  return statSync(path).mtimeMs;
}

function newestSource(dir) {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))
      newest = Math.max(newest, mtimeOf(path));
  }
  return newest;
}

// What `npm run stack` checks before it starts anything: the Node version, and that RabbitMQ, PostgreSQL,
// S3 and the Docker engine named in the environment answer. Each problem names the dependency, where it
// was looked for, why it failed and how to start it, instead of seven services retrying in a loop.
import { request } from 'node:http';
import { connect } from 'node:net';
import { URL } from 'node:url';
import process from 'node:process';

/** The Node major version the services need (package.json "engines"). */
export const NODE_MAJOR = 24;
const TIMEOUT_MS = 3000;

/**
 * Why this Node cannot run the services, or undefined when it can.
 * @param {string} [version] e.g. process.versions.node
 * @returns {string | undefined}
 */
export function nodeProblem(version = process.versions.node) {
  const major = Number(version.split('.')[0]);
  if (major >= NODE_MAJOR) return undefined;
  return (
    `Node ${NODE_MAJOR} or newer is needed, this is Node ${version} (${process.execPath}). ` +
    'scripts/up.sh and scripts/test.sh install Node 24 into /opt/dicomflow-node24 when the machine has an older one; ' +
    'put it first on PATH: export PATH=/opt/dicomflow-node24/node_modules/node/bin:$PATH'
  );
}

/**
 * The dependencies of the stack that do not answer, each with how to start it.
 * @param {NodeJS.ProcessEnv} env
 * @param {readonly string[]} services which services will run (a dependency none of them uses is skipped)
 * @returns {Promise<string[]>}
 */
export async function dependencyProblems(env, services) {
  const uses = (...names) => names.some((name) => services.includes(name));
  const checks = [];
  const rabbit = { host: env.RABBIT_HOSTNAME ?? 'localhost', port: Number(env.RABBIT_PORT ?? 5672) };
  checks.push(
    tcp(rabbit).then((err) =>
      err
        ? `RabbitMQ does not answer on ${rabbit.host}:${rabbit.port} (${err}): start it with ` +
          '`rabbitmq-server -detached` (Debian package rabbitmq-server), set RABBIT_HOSTNAME/RABBIT_PORT, or run scripts/up.sh'
        : undefined,
    ),
  );
  if (uses('scheduler', 'sender', 'flow-tracker')) {
    const pg = { host: env.DB_HOST ?? 'localhost', port: Number(env.DB_PORT ?? 5432) };
    checks.push(
      tcp(pg).then((err) =>
        err
          ? `PostgreSQL does not answer on ${pg.host}:${pg.port} (${err}): start it with ` +
            '`pg_ctlcluster <version> main start` (Debian package postgresql), set DB_HOST/DB_PORT, or run scripts/up.sh'
          : undefined,
      ),
    );
  }
  const s3 = { host: env.S3_ENDPOINT ?? 'localhost', port: Number(env.S3_PORT ?? 9000) };
  checks.push(
    tcp(s3).then((err) =>
      err
        ? `S3 (MinIO) does not answer on ${s3.host}:${s3.port} (${err}): scripts/up.sh builds and starts a MinIO; ` +
          'or set S3_ENDPOINT/S3_PORT (and S3_ACCESS_KEY/S3_SECRET_KEY) to yours'
        : undefined,
    ),
  );
  if (uses('consumer')) {
    checks.push(
      dockerPing(env.DOCKER_HOST).then((err) =>
        err
          ? `the Docker engine does not answer at ${env.DOCKER_HOST || 'unix:///var/run/docker.sock'} (${err}): start it with ` +
            '`dockerd &` (Debian package docker.io; on a machine without bridge networking: ' +
            '`dockerd --bridge=none --iptables=false --ip-masq=false &`), set DOCKER_HOST, or run scripts/up.sh'
          : undefined,
      ),
    );
  }
  return (await Promise.all(checks)).filter((problem) => problem !== undefined);
}

/** Undefined when a TCP connection opens, else the reason. */
function tcp({ host, port }) {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: TIMEOUT_MS });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`no answer within ${TIMEOUT_MS} ms`);
    });
    socket.once('error', (err) => resolve(err.code ?? err.message));
  });
}

/** Undefined when the engine answers GET /_ping, else the reason. */
function dockerPing(dockerHost) {
  const target = engineAddress(dockerHost);
  // An engine over TLS or SSH is left to the consumer's own readiness check.
  if (target === undefined) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? undefined : `/_ping answered ${res.statusCode}`);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.once('error', (err) => resolve(err.code ?? err.message));
    req.end();
  });
}

/** Where the engine listens, as http.request options; undefined for an address not checked here. */
function engineAddress(dockerHost) {
  if (!dockerHost) return { socketPath: '/var/run/docker.sock' };
  if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) };
  const url = URL.canParse(dockerHost.replace(/^tcp:/, 'http:'))
    ? new URL(dockerHost.replace(/^tcp:/, 'http:'))
    : undefined;
  if (url?.protocol === 'http:') return { host: url.hostname, port: Number(url.port || 2375) };
  return undefined;
}

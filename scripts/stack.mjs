// `npm run stack`: all seven services as local processes, logs prefixed, stopped together on Ctrl-C.
// Usage: npm run stack [-- --only storescp,fingerprinter] [-- --raw]   (after `npm run build`)
// RabbitMQ, PostgreSQL, S3 and Docker come from the environment (RABBIT_*, DB_*, S3_*, DOCKER_HOST), with
// the configuration defaults otherwise (localhost). See README "Running it".
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { dependencyProblems, nodeProblem } from './preflight.mjs';
import { checkBuilt, entryPoint, prettyLogLine, STACK_SERVICES, startStack } from './stack-lib.mjs';
import console from 'node:console';
import process from 'node:process';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    raw: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(`usage: npm run stack [-- --only <service,...>] [-- --raw]
  --only   start only these services (default: ${STACK_SERVICES.join(', ')})
  --raw    print the services' JSON log lines as they are`);
  process.exit(0);
}
const services = values.only
  ? values.only
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean)
  : STACK_SERVICES;

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const COLORS = [36, 33, 35, 32, 34, 96, 93];
const width = Math.max(...services.map((name) => name.length), 'buckets'.length);
function prefix(name) {
  const label = `[${name}]`.padEnd(width + 2);
  const index = STACK_SERVICES.indexOf(name);
  return color && index >= 0 ? `\u001b[${COLORS[index]}m${label}\u001b[0m` : label;
}
function print(name, line, stream = 'stdout') {
  const text = values.raw ? line : prettyLogLine(line);
  (stream === 'stderr' ? process.stderr : process.stdout).write(`${prefix(name)} ${text}\n`);
}

let stale;
try {
  stale = checkBuilt(services);
} catch (err) {
  console.error(`stack: ${err instanceof Error ? err.message : String(err)}`);
  const built = services.filter((name) => STACK_SERVICES.includes(name) && existsSync(entryPoint(name)));
  if (built.length > 0 && built.length < services.length) {
    console.error(`stack: the built ones alone: npm run stack -- --only ${built.join(',')}`);
  }
  process.exit(1);
}
if (stale.length > 0) {
  console.error(
    `stack: sources are newer than the build of ${stale.join(', ')}: run \`npm run build\` for the latest code`,
  );
}

const env = process.env;
const tooOld = nodeProblem();
if (tooOld) {
  console.error(`stack: ${tooOld}`);
  process.exit(1);
}
const missing = await dependencyProblems(env, services);
if (missing.length > 0) {
  for (const problem of missing) console.error(`stack: ${problem}`);
  console.error('stack: nothing started');
  process.exit(1);
}
console.log(
  `stack: RabbitMQ ${env.RABBIT_HOSTNAME ?? 'localhost'}:${env.RABBIT_PORT ?? 5672}, ` +
    `PostgreSQL ${env.DB_USER ?? 'dicomflow'}@${env.DB_HOST ?? 'localhost'}:${env.DB_PORT ?? 5432}/${env.DB_NAME ?? 'dicomflow'}, ` +
    `S3 ${env.S3_ENDPOINT ?? 'localhost'}:${env.S3_PORT ?? 9000}, Docker ${env.DOCKER_HOST || 'local socket'}`,
);

let stack;
let stopping;
async function shutdown(reason) {
  if (stopping) return stopping;
  console.log(`\nstack: ${reason}: stopping ${services.join(', ')}`);
  stopping = (async () => {
    const codes = stack ? await stack.stop() : {};
    const failed = Object.entries(codes).filter(([, code]) => code !== 0);
    console.log(
      failed.length === 0
        ? 'stack: all stopped'
        : `stack: stopped; exit codes: ${failed.map(([name, code]) => `${name} ${code}`).join(', ')}`,
    );
    process.exit(failed.length === 0 ? 0 : 1);
  })();
  return stopping;
}
let interrupts = 0;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupts += 1;
    if (interrupts > 1 && stack === undefined) process.exit(130);
    void shutdown(`${signal} received`);
  });
}

try {
  stack = await startStack({
    env,
    services,
    onLine: print,
    onExit: (name, code, signal) => {
      print(
        name,
        `exited on its own (${signal ?? `code ${code}`}); the other services keep running`,
        'stderr',
      );
    },
  });
} catch (err) {
  console.error(`stack: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
if (stopping) await stopping;

const dicomHost = env.AE_HOSTNAME && env.AE_HOSTNAME !== '0.0.0.0' ? env.AE_HOSTNAME : hostname();
const lines = [`stack: ${services.length} service(s) up and ready (each answers /readyz)`];
if (services.includes('storescp')) {
  lines.push(
    `  send DICOM to   AE title ${env.AE_TITLE ?? 'STORESCP'}, host ${dicomHost} (or 127.0.0.1), port ${env.AE_PORT ?? 10000}`,
  );
}
if (services.includes('flow-tracker')) lines.push(`  runs API        ${stack.urls['flow-tracker']}/runs`);
if (services.includes('static-storage'))
  lines.push(`  static content  ${stack.urls['static-storage']}/static`);
lines.push(`  health          ${services.map((name) => `${name} ${stack.urls[name]}/readyz`).join(', ')}`);
lines.push('  Ctrl-C stops them all');
console.log(lines.join('\n'));

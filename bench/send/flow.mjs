// Sender latency: from a `flow.finished` handed to the sender's job (as its consumer does on receipt) to
// the last instance acknowledged by the destination, for the 200-instance CT output (about 105 MB) put in
// S3 as an output tar. Real RabbitMQ, PostgreSQL, S3 and a dcmtk storescp; the job runs in this process
// from the sender's build. Prints each round and, last, one `RESULT key=value ...` line. Not a test.
// Run: node bench/send/flow.mjs   (BENCH_ROUNDS, BENCH_INSTANCES; BENCH_S3_MBPS=<n> downloads through a relay
// passing at most n MB/s, as over a network link (throttle-relay.mjs); BENCH_OTHER_SENDER=<another build of
// services/sender/dist> alternates rounds between this build and that one, e.g. an older commit's, so both
// are measured under the same machine load)
import { Buffer } from 'node:buffer';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import console from 'node:console';
import process from 'node:process';
import { ensureS3 } from '../lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(root, 'bench', '.work');
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const log = (message) => console.log(`[bench] ${message}`);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

if (process.env.BENCH_SKIP_BUILD !== '1')
  execFileSync(
    'flock',
    [
      '/tmp/dicomflow-build.lock',
      process.execPath,
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--build',
      'test/helpers',
      'services/sender',
    ],
    { cwd: root, stdio: 'inherit' },
  );
// The sender runs here, in this process: with the Node flags the service runs with (scripts/stack-lib.mjs).
const { NODE_FLAGS } = await import('../../scripts/stack-lib.mjs');
if (!NODE_FLAGS.sender.every((flag) => process.execArgv.includes(flag))) {
  const self = fileURLToPath(import.meta.url);
  const again = spawnSync(process.execPath, [...NODE_FLAGS.sender, ...process.execArgv, self], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_SKIP_BUILD: '1' },
  });
  process.exit(again.status ?? 1);
}
await ensureS3(); // a MinIO of its own unless S3_ENDPOINT names one; stopped when the process exits
const helpers = await import('@dicomflow/test-helpers');
const { loadConfig } = await import('@dicomflow/config');
const { connectBroker } = await import('@dicomflow/broker');
const { createLogger } = await import('@dicomflow/runtime');
const { createStorage } = await import('@dicomflow/storage');
const sender = process.env.BENCH_SENDER_DIST ?? join(root, 'services', 'sender', 'dist');
const builds = [
  { name: 'this', execSendJob: (await import(join(sender, 'send', 'send-run.js'))).execSendJob },
];
if (process.env.BENCH_OTHER_SENDER)
  builds.push({
    name: 'other',
    execSendJob: (await import(join(process.env.BENCH_OTHER_SENDER, 'send', 'send-run.js'))).execSendJob,
  });
const { AckStore } = await import(join(sender, 'db', 'ack-store.js'));
const { migrate } = await import(join(sender, 'db', 'migrations.js'));
const { createPool } = await import(join(sender, 'db', 'pool.js'));
const { withRunLock } = await import(join(sender, 'db', 'run-lock.js'));
const { default: tar } = await import('tar-stream');
const { default: amqp } = await import('amqplib');

async function series(name, count) {
  const dir = join(work, name);
  const marker = join(dir, '.complete');
  if (existsSync(marker) && Number(await readFile(marker, 'utf8')) === count) {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.dcm')).sort();
    return files.map((f) => join(dir, f));
  }
  await rm(dir, { recursive: true, force: true });
  const files = await helpers.generateCtSeries(dir, count, { patientId: 'BENCH', patientName: 'Bench^Send' });
  await writeFile(marker, String(count));
  return files;
}

async function tarOf(files) {
  const pack = tar.pack();
  const chunks = [];
  pack.on('data', (chunk) => chunks.push(chunk));
  const ended = new Promise((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const [n, file] of files.entries()) {
    const data = await readFile(file);
    pack.entry({ name: `out/${String(n).padStart(4, '0')}.dcm`, size: data.length }, data);
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

const id = randomUUID().replaceAll('-', '').slice(0, 10);
const exchange = `bench.send-flow-${id}`;
const schema = `bench_send_flow_${id}`;
const bucket = `bench-send-flow-${id}`;
const confDir = await mkdtemp(join(tmpdir(), 'bench-send-flow-conf-'));
const config = loadConfig('sender', {
  confDir,
  env: {
    ...helpers.testEnvironment(),
    RABBIT_EXCHANGE: exchange,
    SENDER_DB_SCHEMA: schema,
    LOG_LEVEL: 'warn',
  },
});
const logger = createLogger({ service: 'bench-send-flow', level: 'warn' });
const files = await series(`send-${INSTANCES}`, INSTANCES);
const body = await tarOf(files);
log(`${files.length} instances, output tar ${(body.length / 1e6).toFixed(1)} MB, ${ROUNDS} rounds`);
const storage = createStorage(helpers.testStorageConfig());
await storage.ensureBucket(bucket);
await storage.putBuffer(bucket, 'run/output.tar', body);
// The job (and the download-alone reference) read S3 directly, or through the throttling relay.
let relay;
let jobStorage = storage;
if (process.env.BENCH_S3_MBPS) {
  const { spawn } = await import('node:child_process');
  relay = spawn(
    process.execPath,
    [
      join(root, 'bench', 'send', 'throttle-relay.mjs'),
      String(helpers.testStorageConfig().port),
      process.env.BENCH_S3_MBPS,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const relayPort = await new Promise((resolve) =>
    relay.stdout.once('data', (line) => resolve(Number(String(line)))),
  );
  jobStorage = createStorage({ ...helpers.testStorageConfig(), port: relayPort });
  log(`S3 through a relay passing ${process.env.BENCH_S3_MBPS} MB/s`);
}
const pool = createPool(config, logger);
await migrate(pool, schema, logger);
const acks = new AckStore(pool, schema);
const broker = await connectBroker({
  config: helpers.testBrokerConfig(),
  logger,
  exchange,
  deadExchange: `${exchange}.dead`,
  connectionName: `bench-send-flow-${process.pid}`,
});
// The send events need a queue bound, else publishing them fails (unroutable).
const amqpConnection = await amqp.connect(helpers.testBrokerConfig());
const amqpChannel = await amqpConnection.createChannel();
await amqpChannel.assertQueue(`${exchange}.events`, { autoDelete: false });
await amqpChannel.bindQueue(`${exchange}.events`, exchange, 'send.#');
const spool = await mkdtemp(join(tmpdir(), 'bench-send-flow-spool-'));
const out = await mkdtemp(join(tmpdir(), 'bench-send-flow-out-'));
const port = await helpers.freePort();
const shim = await helpers.nodelayShimPath(work);
const peer = await helpers.startDcmtkStorescp({
  port,
  outDir: out,
  env: { ...process.env, LD_PRELOAD: shim },
});
const stopping = new globalThis.AbortController();
const toAck = new Map(builds.map((b) => [b.name, []]));
const toDone = new Map(builds.map((b) => [b.name, []]));
const cpus = new Map(builds.map((b) => [b.name, []]));
const downloads = [];
try {
  for (let n = 0; n < ROUNDS * builds.length; n++) {
    const round = Math.floor(n / builds.length);
    const { name, execSendJob } = builds[n % builds.length];
    // The download alone, for reference: what the sender cannot go below.
    const d0 = performance.now();
    await pipeline(
      await jobStorage.getStream(bucket, 'run/output.tar'),
      new Writable({ write: (_chunk, _enc, done) => done() }),
    );
    downloads.push(performance.now() - d0);
    const runId = randomUUID();
    let stored = 0;
    let lastAck = 0;
    let firstAck = 0;
    let downloaded = 0;
    // The tar's last byte read by the job (an 'end' listener does not change how the stream flows).
    const timedStorage = Object.create(jobStorage);
    timedStorage.getStream = async (b, k) => {
      const stream = await jobStorage.getStream(b, k);
      stream.once('end', () => (downloaded = performance.now()));
      return stream;
    };
    const cpu = process.cpuUsage();
    const begin = performance.now();
    await execSendJob(
      {
        runId,
        receiptId: randomUUID(),
        flowName: 'bench',
        flowVersion: '1',
        flowFile: 'bench.yaml',
        finishedAt: new Date().toISOString(),
        stepCount: 1,
        output: { bucket, key: 'run/output.tar' },
        destinations: [{ host: '127.0.0.1', port, ae_title: 'STORESCP' }],
        returnToSender: { host: '127.0.0.1', aeTitle: 'SCANNER', ports: [] },
      },
      {
        broker,
        storage: timedStorage,
        acks,
        lockRun: (run, job) => withRunLock(pool, schema, run, stopping.signal, job),
        callingAeTitle: 'BENCH',
        spoolDir: spool,
        retry: { maxAttempts: 1, initialMs: 1000, maxMs: 1000, timeoutMs: 60_000 },
        logger,
        signal: stopping.signal,
        attempt: 1,
        onStored: () => {
          stored++;
          lastAck = performance.now();
          if (firstAck === 0) firstAck = lastAck;
        },
      },
    );
    const done = performance.now();
    const used = process.cpuUsage(cpu);
    cpus.get(name).push((used.user + used.system) / 1000);
    if (stored !== files.length) throw new Error(`${stored} of ${files.length} instances acknowledged`);
    toAck.get(name).push(lastAck - begin);
    toDone.get(name).push(done - begin);
    for (const name of await readdir(out)) await rm(join(out, name), { force: true });
    log(
      `round ${round + 1} (${name} build): download alone ${downloads.at(-1).toFixed(0)} ms, flow.finished -> last ack ${toAck.get(name).at(-1).toFixed(0)} ms, -> job done ${toDone.get(name).at(-1).toFixed(0)} ms (first ack after ${(firstAck - begin).toFixed(0)} ms, tar read after ${(downloaded - begin).toFixed(0)} ms, sender CPU ${((used.user + used.system) / 1000).toFixed(0)} ms, of it system ${(used.system / 1000).toFixed(0)} ms)`,
    );
  }
} finally {
  relay?.kill();
  await peer.stop();
  await broker.close();
  await amqpChannel.deleteQueue(`${exchange}.events`);
  await amqpChannel.deleteExchange(exchange);
  await amqpChannel.deleteExchange(`${exchange}.dead`);
  await amqpConnection.close();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  await storage.remove(bucket, 'run/output.tar');
  await storage.removeBucket(bucket);
  await rm(spool, { recursive: true, force: true });
  await rm(out, { recursive: true, force: true });
  await rm(confDir, { recursive: true, force: true });
}
const other =
  builds.length > 1
    ? ` other_to_last_ack_ms=${median(toAck.get('other')).toFixed(0)} other_to_job_done_ms=${median(toDone.get('other')).toFixed(0)} other_cpu_ms=${median(cpus.get('other')).toFixed(0)}`
    : '';
console.log(
  `RESULT instances=${files.length} to_last_ack_ms=${median(toAck.get('this')).toFixed(0)} to_job_done_ms=${median(toDone.get('this')).toFixed(0)} cpu_ms=${median(cpus.get('this')).toFixed(0)}${other} download_alone_ms=${median(downloads).toFixed(0)}`,
);

// Consumer benchmark: the overhead the consumer adds around a model container, with a ~105 MB input.
// Prints what it does and, last, one `RESULT key=value ...` line (see README.md). Not a test.
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import console from 'node:console';
import process from 'node:process';
import { ensureS3, median, positiveInt } from '../lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(root, 'bench', '.work');

const INSTANCES = positiveInt('BENCH_INSTANCES', 200);
const JOBS = positiveInt('BENCH_JOBS', 7);
const ROUNDS = positiveInt('BENCH_ROUNDS', 3);
const log = (message) => console.log(`[bench] ${message}`);

// The consumer runs from its build, the helpers too (tsc --build is a no-op when up to date).
execFileSync(
  process.execPath,
  [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--build', 'test/helpers', 'services/consumer'],
  { cwd: root, stdio: 'inherit' },
);
await ensureS3(); // a MinIO of its own unless S3_ENDPOINT names one; stopped when the process exits
const helpers = await import('@dicomflow/test-helpers');
const { createTarStream, inspectPart10File, tarMemberName, tarSize } = await import('@dicomflow/dicom');
const { measureFloors } = await import('./floors.mjs');
const { createStorage } = await import('@dicomflow/storage');
const { NODE_FLAGS } = await import('../../scripts/stack-lib.mjs');
const { removeBucketAndObjects, uniqueBucketName } = await import('@dicomflow/storage/testing');
const { connectBroker, deadQueueName, DEFAULT_RETRY_DELAYS_MS, deleteSuiteQueues, retryQueueName } =
  await import('@dicomflow/broker');
const { checkFlowDefinition, formatReceiptIndex, jobMessageId } = await import('@dicomflow/messages');
const { createLogger } = await import('@dicomflow/runtime');
const { default: amqp } = await import('amqplib');
const { default: Docker } = await import('dockerode');

const fixed = (n) => n.toFixed(3);

/** User + system CPU seconds of a process so far (Linux /proc; clock ticks of 1/100 s). */
async function cpuSeconds(pid) {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The CT series in bench/.work, generated once and reused while its marker says it is complete. */
async function series(count) {
  const dir = join(work, `consumer-ct-${count}`);
  const marker = join(dir, '.complete');
  if (existsSync(marker) && Number(await readFile(marker, 'utf8')) === count) {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.dcm')).sort();
    log(`reusing ${files.length} instances in ${dir}`);
    return files.map((f) => join(dir, f));
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const begin = performance.now();
  const files = await helpers.generateCtSeries(dir, count, {
    patientId: 'BENCH',
    patientName: 'Bench^Consumer',
  });
  await writeFile(marker, String(count));
  log(`generated ${count} instances in ${((performance.now() - begin) / 1000).toFixed(1)} s`);
  return files;
}

/** Stores the files as a receipt (tar + index) the way the receiver does. */
async function storeReceipt(storage, bucket, files) {
  const receiptId = randomUUID();
  const entries = [];
  const index = { receiptId, instances: [] };
  for (const path of files) {
    const info = await inspectPart10File(path);
    const member = tarMemberName(
      ['StudyInstanceUID', 'SeriesInstanceUID'],
      info.elements,
      info.sopInstanceUid,
    );
    entries.push({ name: member, path, size: info.size });
    index.instances.push({
      member,
      size: info.size,
      sopClassUid: info.sopClassUid,
      sopInstanceUid: info.sopInstanceUid,
      studyInstanceUid: info.studyInstanceUid,
      seriesInstanceUid: info.seriesInstanceUid,
      transferSyntaxUid: info.transferSyntaxUid,
      elements: info.elements,
    });
  }
  const size = tarSize(entries);
  await storage.putStream(bucket, `${receiptId}.tar`, createTarStream(entries), size);
  // JSON Lines, as the receiver writes it: a header, then one line per instance.
  await storage.putBuffer(bucket, `${receiptId}.index.jsonl`, formatReceiptIndex(index), 'application/jsonl');
  return {
    receiptId,
    tarKey: `${receiptId}.tar`,
    indexKey: `${receiptId}.index.jsonl`,
    size,
    entries,
    members: entries.map((e) => e.name),
  };
}

const id = randomUUID().replaceAll('-', '').slice(0, 10);
const isolation = {
  exchange: `bench.consumer-${id}`,
  prefix: `bench.consumer-${id}.`,
  consumerId: `bench-consumer-${id}`,
  buckets: {
    incoming: uniqueBucketName('incoming'),
    runs: uniqueBucketName('runs'),
    static: uniqueBucketName('static'),
  },
};
const s3 = helpers.testStorageConfig();
const storage = createStorage(s3);
const rabbit = helpers.testBrokerConfig();
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
let consumer;
let broker;
const confDir = await mkdtemp(join(work, 'consumer-conf-'));

try {
  const files = await series(INSTANCES);
  for (const bucket of Object.values(isolation.buckets)) await storage.ensureBucket(bucket);
  const receipt = await storeReceipt(storage, isolation.buckets.incoming, files);
  log(`receipt of ${files.length} instances stored: ${(receipt.size / 1e6).toFixed(1)} MB tar`);
  const image = await helpers.buildTestModelImage(helpers.COPY_MODEL);
  log(`copy model image ${image}`);

  broker = await connectBroker({
    config: rabbit,
    logger: createLogger({ service: 'bench-consumer', level: 'silent' }),
    exchange: isolation.exchange,
    deadExchange: `${isolation.exchange}.dead`,
  });
  await broker.assertSuiteQueues(isolation.prefix);
  const finished = new Map();
  await broker.consume(
    { queue: `${isolation.prefix}bench.events`, bindings: ['job.finished', 'job.failed'], prefetch: 10 },
    (body, ctx) => {
      finished.get(body.runId)?.({ routingKey: ctx.routingKey, body, at: Date.now() });
      return Promise.resolve();
    },
  );

  // Outside view: the engine's own start and die events of the consumer's containers.
  const engineEvents = new Map();
  const events = await docker.getEvents({
    filters: {
      type: ['container'],
      event: ['start', 'die'],
      label: [`dicomflow.consumer=${isolation.consumerId}`],
    },
  });
  createInterface({ input: events }).on('line', (line) => {
    const event = JSON.parse(line);
    const runId = event.Actor?.Attributes?.['dicomflow.run-id'];
    if (!runId) return;
    const entry = engineEvents.get(runId) ?? {};
    entry[event.Action === 'start' ? 'start' : 'die'] = event.timeNano / 1e6;
    engineEvents.set(runId, entry);
  });

  const flow = checkFlowDefinition({
    name: 'bench-copy',
    version: '1',
    triggers: [{ Modality: 'CT' }],
    models: [{ docker_kwargs: { image }, timeout: 600 }],
  });
  if (!flow.ok) throw new Error(JSON.stringify(flow.issues));

  /** Runs JOBS jobs on a fresh consumer process in one staging mode; returns the medians. */
  async function measure(mode, extraEnv) {
    log(`--- ${mode} mode ---`);
    // The consumer process, as production runs it; its 'job finished' log lines carry its own timings.
    const timings = new Map();
    consumer = spawn(
      process.execPath,
      [...(NODE_FLAGS.consumer ?? []), join(root, 'services/consumer/dist/main.js')],
      {
        env: {
          ...process.env,
          ...helpers.testEnvironment(),
          CONF_DIR: confDir,
          LOG_LEVEL: 'info',
          HTTP_PORT: '0',
          RABBIT_EXCHANGE: isolation.exchange,
          RABBIT_QUEUE_PREFIX: isolation.prefix,
          S3_BUCKET_INCOMING: isolation.buckets.incoming,
          S3_BUCKET_RUNS: isolation.buckets.runs,
          S3_BUCKET_STATIC: isolation.buckets.static,
          CONSUMER_ID: isolation.consumerId,
          CPUS: '1',
          GPUS: '',
          CONSUMER_WORK_DIR: '',
          ...extraEnv,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let ready;
    const started = new Promise((resolve) => (ready = resolve));
    createInterface({ input: consumer.stdout }).on('line', (line) => {
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if (entry.msg === 'consumer started') ready();
      if (entry.msg === 'job finished' && entry.runId) timings.set(entry.runId, entry.timings);
      if (entry.level >= 40) console.log(`[consumer] ${line}`);
    });
    await started;

    const rows = [];
    const cpuBefore = await cpuSeconds(consumer.pid);
    for (let n = 1; n <= JOBS; n++) {
      const runId = randomUUID();
      const job = {
        runId,
        receiptId: receipt.receiptId,
        step: 0,
        stepCount: 1,
        flowName: 'bench-copy',
        flowVersion: '1',
        flowFile: 'bench-copy.yaml',
        flowHash: 'ab'.repeat(32),
        model: flow.flow.models[0],
        input: {
          kind: 'receipt',
          bucket: isolation.buckets.incoming,
          tarKey: receipt.tarKey,
          indexKey: receipt.indexKey,
          members: receipt.members,
          tarSubdir: ['SeriesInstanceUID'],
        },
        output: { bucket: isolation.buckets.runs, key: `${runId}/0/output.tar` },
        priority: 0,
        dispatchedAt: new Date().toISOString(),
      };
      const outcome = new Promise((resolve) => finished.set(runId, resolve));
      const publishedAt = Date.now();
      await broker.publish('job.cpu', job, { messageId: jobMessageId(runId, 0), correlationId: runId });
      const result = await outcome;
      if (result.routingKey !== 'job.finished')
        throw new Error(`job ${n} failed: ${JSON.stringify(result.body)}`);
      const output = await storage.stat(job.output.bucket, job.output.key);
      // The log line follows the confirm the bench saw; wait for it briefly.
      for (let i = 0; i < 100 && !timings.has(runId); i++) await sleep(20);
      const own = timings.get(runId);
      const engine = engineEvents.get(runId) ?? {};
      const outside =
        engine.start && engine.die
          ? (result.at - publishedAt - (engine.die - engine.start)) / 1000
          : Number.NaN;
      rows.push({ ...own, outside_s: outside });
      log(
        `job ${n}: start_s=${fixed(own.start_s)} run_s=${fixed(own.run_s)} collect_s=${fixed(own.collect_s)} ` +
          `overhead_s=${fixed(own.start_s + own.collect_s)} | outside view (published -> job.finished received, ` +
          `minus the engine's start->die): ${fixed(outside)} s | output ${(output.size / 1e6).toFixed(1)} MB`,
      );
      log(
        `  steps (s): ${Object.entries(own.steps_s ?? {})
          .map(([step, s]) => `${step}=${fixed(s)}`)
          .join(' ')}`,
      );
      // Each output is 105 MB: removed at once so that the disk does not fill up.
      await storage.remove(job.output.bucket, job.output.key);
    }
    const cpuPerJob = ((await cpuSeconds(consumer.pid)) - cpuBefore) / JOBS;
    const exited = new Promise((resolve) => consumer.once('exit', resolve));
    consumer.kill('SIGTERM');
    await exited;
    const result = {
      start: median(rows.map((r) => r.start_s)),
      collect: median(rows.map((r) => r.collect_s)),
      overhead: median(rows.map((r) => r.start_s + r.collect_s)),
    };
    log(
      `${mode}: medians over ${JOBS} jobs: start_s=${fixed(result.start)} collect_s=${fixed(result.collect)} ` +
        `overhead_s=${fixed(result.overhead)}`,
    );
    log(`${mode}: outside view median: ${fixed(median(rows.map((r) => r.outside_s)))} s`);
    log(`${mode}: consumer process CPU time per job: ${fixed(cpuPerJob)} s (user + system)`);
    return result;
  }

  // Both staging modes, one after the other on the same input: the work folder (the default in
  // compose.yaml) and the Engine API archive copies (CONSUMER_WORK_DIR empty). The work folder is outside
  // the checkout, as compose's /var/lib/dicomflow/work is: on the test machine every file created under
  // /work took ~1 ms (200 files of 512 KiB: 0.25-0.5 s against 0.02-0.07 s under /root or /var/tmp).
  const workDir = await mkdtemp(
    join(process.env.BENCH_CONSUMER_WORK_DIR || tmpdir(), 'dicomflow-bench-consumer-'),
  );
  log(`work folder ${workDir}`);
  let folder;
  let archive;
  let floor;
  try {
    floor = await measureFloors({
      storage,
      docker,
      image,
      receipt: { ...receipt, bucket: isolation.buckets.incoming },
      bucket: isolation.buckets.runs,
      rounds: ROUNDS,
      name: `dicomflow-bench-start-${id}`,
      log,
    });
    log(
      `floor: GET ${fixed(floor.get)} + PUT ${fixed(floor.put)} + Docker start ${fixed(floor.start)} = ${fixed(floor.total)} s`,
    );
    folder = await measure('work-folder', { CONSUMER_WORK_DIR: workDir });
    const leftFolders = await readdir(join(workDir, isolation.consumerId)).catch(() => []);
    log(`job folders left behind: ${leftFolders.length}`);
    archive = await measure('archive', {});
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  events.destroy();
  const left = await docker.listContainers({
    all: true,
    filters: { label: [`dicomflow.consumer=${isolation.consumerId}`] },
  });
  log(`containers left behind: ${left.length}`);
  log(
    `work-folder overhead ${fixed(folder.overhead)} s = floor ${fixed(floor.total)} + beyond it ` +
      `${fixed(folder.overhead - floor.total)} s`,
  );
  console.log(
    `RESULT overhead_s=${fixed(folder.overhead)} start_s=${fixed(folder.start)} collect_s=${fixed(folder.collect)} ` +
      `mode=work-folder archive_overhead_s=${fixed(archive.overhead)} archive_start_s=${fixed(archive.start)} ` +
      `archive_collect_s=${fixed(archive.collect)} s3_put_s=${fixed(floor.put)} s3_get_s=${fixed(floor.get)} ` +
      `docker_start_s=${fixed(floor.start)} floor_s=${fixed(floor.total)} ` +
      `overhead_beyond_floor_s=${fixed(folder.overhead - floor.total)}`,
  );
} finally {
  if (consumer && consumer.exitCode === null) {
    const exited = new Promise((resolve) => consumer.once('exit', resolve));
    consumer.kill('SIGTERM');
    await exited;
  }
  await broker?.close();
  const connection = await amqp.connect(rabbit);
  const channel = await connection.createChannel();
  // The consumer's job queues retry after 2, 10, 30 and 120 s (services/consumer/src/consumers/job-slot.ts).
  await deleteSuiteQueues(channel, isolation.prefix, [...DEFAULT_RETRY_DELAYS_MS, 2000, 10_000]);
  for (const queue of [`${isolation.prefix}bench.events`]) {
    await channel.deleteQueue(queue);
    await channel.deleteQueue(deadQueueName(queue));
    for (const delay of DEFAULT_RETRY_DELAYS_MS) await channel.deleteQueue(retryQueueName(queue, delay));
  }
  await channel.deleteExchange(isolation.exchange);
  await channel.deleteExchange(`${isolation.exchange}.dead`);
  await connection.close();
  for (const bucket of Object.values(isolation.buckets)) await removeBucketAndObjects(storage, bucket);
  await rm(confDir, { recursive: true, force: true });
}

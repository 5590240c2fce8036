// End-to-end benchmark: the whole suite (started as `npm run stack` starts it) against a direct transfer
// measured in the same run. Prints what it does and, last, one `RESULT key=value ...` line (README.md).
// Not a test: nothing here asserts a time.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import console from 'node:console';
import process from 'node:process';
import { containerStartSeconds, ensureS3, median, positiveInt, rssMb, s3PutGetSeconds } from '../lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(root, 'bench', '.work');

const CT_INSTANCES = positiveInt('BENCH_INSTANCES', 200);
const ROUNDS = positiveInt('BENCH_ROUNDS', 3);
const STUDIES = positiveInt('BENCH_STUDIES', 40);
const STUDY_INSTANCES = positiveInt('BENCH_STUDY_INSTANCES', 50);
const SENDERS = positiveInt('BENCH_SENDERS', 4);
// Every service's log lines, when set (a file path): to follow one run through the suite afterwards.
const SERVICE_LOG = process.env.BENCH_SERVICE_LOG;
const log = (message) => console.log(`[bench] ${message}`);
const fixed = (n) => n.toFixed(3);

// Everything runs from its build (tsc --build is a no-op when up to date; BENCH_SKIP_BUILD=1 skips it).
if (process.env.BENCH_SKIP_BUILD !== '1') {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--build'], {
    cwd: root,
    stdio: 'inherit',
  });
}
const stopS3 = await ensureS3();
const helpers = await import('@dicomflow/test-helpers');
const { STACK_SERVICES, startStack } = await import('../../scripts/stack-lib.mjs');
const { removeIsolatedStack } = await import('../../scripts/stack-cleanup.mjs');
const { loadConfig, storageConfigFrom } = await import('@dicomflow/config');
const { createStorage } = await import('@dicomflow/storage');
const { default: Docker } = await import('dockerode');

/** A series in bench/.work, generated once and reused while its marker says it is complete. */
async function series(name, count, opts = {}) {
  const dir = join(work, name);
  const marker = join(dir, '.complete');
  if (existsSync(marker) && Number(await readFile(marker, 'utf8')) === count) {
    return (await readdir(dir))
      .filter((f) => f.endsWith('.dcm'))
      .sort()
      .map((f) => join(dir, f));
  }
  await rm(dir, { recursive: true, force: true });
  const files = await helpers.generateCtSeries(dir, count, { patientName: 'Bench^E2e', ...opts });
  await writeFile(marker, String(count));
  log(`generated ${count} instances into ${dir}`);
  return files;
}

/** Runs dcmtk storescu over `files` (one association); resolves with the wall time in seconds. */
function storescu(port, calledAe, files, env) {
  return new Promise((resolveRun, rejectRun) => {
    const begin = performance.now();
    const child = spawn('storescu', ['-aec', calledAe, '-nh', '127.0.0.1', String(port), ...files], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', rejectRun);
    child.once('exit', (code) =>
      code === 0
        ? resolveRun((performance.now() - begin) / 1000)
        : rejectRun(new Error(`storescu exited ${code}: ${stderr}`)),
    );
  });
}

/** Waits until `dir` holds `count` files; returns the newest modification time (ms since the epoch). */
async function lastStored(dir, count, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const names = await readdir(dir).catch(() => []);
    if (names.length >= count) {
      let newest = 0;
      for (const name of names) newest = Math.max(newest, (await stat(join(dir, name))).mtimeMs);
      return newest;
    }
    if (Date.now() > deadline) throw new Error(`only ${names.length} of ${count} files arrived in ${dir}`);
    await sleep(5);
  }
}

async function emptyDir(dir) {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
}

const id = randomBytes(4).toString('hex');
const scratch = await mkdtemp(join(tmpdir(), 'dicomflow-bench-e2e-'));
const cleanups = [];
const env = {
  ...helpers.testEnvironment(),
  RABBIT_EXCHANGE: `bench.e2e-${id}`,
  RABBIT_QUEUE_PREFIX: `bench.e2e-${id}.`,
  S3_BUCKET_INCOMING: `bench-${id}-incoming`,
  S3_BUCKET_RUNS: `bench-${id}-runs`,
  S3_BUCKET_STATIC: `bench-${id}-static`,
  SCHEDULER_DB_SCHEMA: `bench_${id}_scheduler`,
  TRACKER_DB_SCHEMA: `bench_${id}_tracker`,
  SENDER_DB_SCHEMA: `bench_${id}_sender`,
  AE_TITLE: 'DICOMFLOW',
  AE_HOSTNAME: '127.0.0.1',
  HTTP_HOST: '127.0.0.1',
  FLOW_DIRECTORY: join(scratch, 'flows'),
  STATIC_DIRECTORY: join(scratch, 'static'),
  SPOOL_DIR: join(scratch, 'spool'),
  SENDER_SPOOL_DIR: join(scratch, 'sender'),
  // Job folders bind-mounted into the model containers (the mode compose.yaml uses).
  CONSUMER_WORK_DIR: join(scratch, 'consumer-work'),
  CPUS: '2',
  // info: the stack reads each service's bound HTTP port from its "listening" line.
  LOG_LEVEL: 'info',
  TRACKER_API_TOKEN: randomBytes(16).toString('hex'),
};

async function cleanUp() {
  for (const fn of cleanups.reverse()) await fn().catch((err) => log(`clean-up: ${err.message}`));
  await removeIsolatedStack(env);
  await rm(scratch, { recursive: true, force: true });
  await stopS3();
}

try {
  await mkdir(env.FLOW_DIRECTORY, { recursive: true });
  await mkdir(env.STATIC_DIRECTORY, { recursive: true });
  // Debian's dcmtk never sets TCP_NODELAY; the shim does, on every dcmtk process here, so no side of any
  // transfer waits out a delayed ACK and the services are what is measured.
  const shim = await helpers.nodelayShimPath(scratch);
  const dcmtkEnv = { ...process.env, LD_PRELOAD: shim };
  const ct = await series(`e2e-ct-${CT_INSTANCES}`, CT_INSTANCES, { patientId: 'BENCH-CT' });
  let ctBytes = 0;
  for (const file of ct) ctBytes += (await stat(file)).size;
  log(`CT series: ${ct.length} instances, ${(ctBytes / 1e6).toFixed(1)} MB`);
  const copyImage = await helpers.buildTestModelImage(helpers.COPY_MODEL);
  const noopImage = await helpers.buildTestModelImage({ name: 'noop-model', script: 'exit 0\n' });

  const destPort = await helpers.freePort();
  const destDir = join(scratch, 'destination');
  await emptyDir(destDir);
  const destination = await helpers.startDcmtkStorescp({
    port: destPort,
    outDir: destDir,
    aeTitle: 'DEST',
    env: dcmtkEnv,
  });
  cleanups.push(() => destination.stop());

  // --- Direct transfer baseline: storescu -> dcmtk storescp, the same files. -------------------------
  const baselines = [];
  for (let round = 0; round < ROUNDS; round++) {
    await emptyDir(destDir);
    const begin = Date.now();
    await storescu(destPort, 'DEST', ct, dcmtkEnv);
    baselines.push((Date.now() - begin) / 1000);
  }
  const baseline = median(baselines);
  log(
    `baseline (storescu -> dcmtk storescp): ${baselines.map(fixed).join(' ')} s; median ${fixed(baseline)}`,
  );

  // --- What S3 alone costs: the suite moves the study through S3 twice (receipt tar, then the model's
  // output tar), each time one PUT and one GET of the whole tar, one after the other. Measured with the
  // services' own storage code, against the same S3, in this run: no overhead can be below it.
  const s3 = createStorage(storageConfigFrom(loadConfig('storescp', { env: { ...process.env, ...env } })));
  const floorBucket = `bench-${id}-floor`;
  await s3.ensureBucket(floorBucket);
  cleanups.push(() => s3.removeBucket(floorBucket));
  const entries = await Promise.all(
    ct.map(async (path, i) => ({
      name: `${String(i).padStart(6, '0')}.dcm`,
      path,
      size: (await stat(path)).size,
    })),
  );
  const {
    puts,
    gets,
    bytes: tarBytes,
  } = await s3PutGetSeconds({
    storage: s3,
    bucket: floorBucket,
    entries,
    rounds: ROUNDS,
  });
  const s3Floor = 2 * (median(puts) + median(gets));
  log(
    `S3 (${(tarBytes / 1e6).toFixed(1)} MB tar): PUT ${puts.map(fixed).join(' ')} s, GET ${gets.map(fixed).join(' ')} s; ` +
      `2 x (PUT + GET) = ${fixed(s3Floor)} s`,
  );

  // --- What the Docker engine alone takes to start the model's container: the consumer creates it while the
  // input downloads, but `start` (the engine and runc setting the container up) is on the path before the
  // model runs, and the container's own run time is measured from its end.
  const docker = new Docker();
  const starts = await containerStartSeconds({
    docker,
    image: copyImage,
    name: `dicomflow-bench-start-${id}`,
    rounds: ROUNDS,
  });
  const dockerStart = median(starts);
  log(`Docker engine start of the copy model's container: ${starts.map(fixed).join(' ')} s`);

  // --- The suite. ---------------------------------------------------------------------------------------
  env.AE_PORT = String(await helpers.freePort());
  const output = [];
  const stack = await startStack({
    env: { ...process.env, ...env },
    httpPorts: Object.fromEntries(STACK_SERVICES.map((name) => [name, 0])),
    dataDir: join(scratch, 'stack'),
    onLine: (service, line) => {
      output.push(`[${service}] ${line}`);
      if (SERVICE_LOG) appendFileSync(SERVICE_LOG, `[${service}] ${line}\n`);
      if (output.length > 200) output.shift();
    },
    waitFor: 'readyz',
    readyTimeoutMs: 120_000,
  });
  cleanups.push(() => stack.stop());
  const tracker = stack.urls['flow-tracker'];
  const getJson = async (url) => {
    const response = await globalThis.fetch(url, {
      headers: { authorization: `Bearer ${env.TRACKER_API_TOKEN}` },
    });
    if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const runsOf = async (flow) => (await getJson(`${tracker}/runs?flow=${flow}&limit=500`)).runs;
  const writeFlow = async (file, flow) => {
    await writeFile(join(env.FLOW_DIRECTORY, file), JSON.stringify(flow));
    const fingerprinter = stack.urls.fingerprinter;
    for (;;) {
      const body = await getJson(`${fingerprinter}/readyz`).catch(() => ({}));
      if ((body.details?.flows ?? []).some((f) => f.file === file)) return;
      await sleep(50);
    }
  };
  await writeFlow('ct-copy.yaml', {
    name: 'bench-ct-copy',
    triggers: [{ PatientID: '^BENCH-CT$' }],
    models: [{ docker_kwargs: { image: copyImage } }],
    destinations: [{ host: '127.0.0.1', port: destPort, ae_title: 'DEST' }],
  });

  // Round 0 is the suite's first study since it started (every service still compiling its hot paths): it
  // is printed as the cold time; the medians are of the ROUNDS after it, the suite as it runs in service.
  const e2es = [];
  const containers = [];
  const receives = [];
  let e2eCold = 0;
  for (let round = 0; round <= ROUNDS; round++) {
    await emptyDir(destDir);
    const before = (await runsOf('bench-ct-copy')).length;
    const begin = Date.now();
    const receive = await storescu(Number(env.AE_PORT), env.AE_TITLE, ct, dcmtkEnv);
    const end = await lastStored(destDir, ct.length);
    const e2e = (end - begin) / 1000;
    let run;
    for (;;) {
      const runs = await runsOf('bench-ct-copy');
      run = runs.length > before ? runs[0] : undefined;
      if (run && (run.status === 4 || run.status === 400)) break;
      await sleep(50);
    }
    if (run.status !== 4) throw new Error(`run ${run.id} failed: ${JSON.stringify(run.failure)}`);
    const detail = await getJson(`${tracker}/runs/${run.id}`);
    const container = detail.steps[0].runningMs / 1000;
    if (round === 0) e2eCold = e2e;
    else {
      e2es.push(e2e);
      containers.push(container);
      receives.push(receive);
    }
    log(
      `${round === 0 ? 'cold round' : `round ${round}`}: e2e ${fixed(e2e)} s (storescu to our receiver ${fixed(receive)} s), container ${fixed(container)} s, stages ${JSON.stringify(detail.timings)}`,
    );
  }
  const e2e = median(e2es);
  const container = median(containers);
  const receive = median(receives);
  const overhead = e2e - 2 * baseline - container;
  const beyondFloors = overhead - s3Floor - dockerStart;
  log(
    `e2e median ${fixed(e2e)} s = 2 x baseline ${fixed(baseline)} + container ${fixed(container)} + overhead ${fixed(overhead)}` +
      ` (of it S3 transfers at least ${fixed(s3Floor)} s, the rest ${fixed(overhead - s3Floor)} s)`,
  );
  log(
    `overhead ${fixed(overhead)} s = S3 floor ${fixed(s3Floor)} + Docker engine start ${fixed(dockerStart)}` +
      ` + the services' own ${fixed(beyondFloors)} s (receiving, with an fdatasync per instance, took` +
      ` ${fixed(receive)} s against the baseline's ${fixed(baseline)} s)`,
  );

  // --- Throughput: many small studies from parallel senders, a no-op model, CPUS=2. -----------------------
  await writeFlow('noop.yaml', {
    name: 'bench-noop',
    triggers: [{ PatientID: '^BENCH-TP$' }],
    models: [{ docker_kwargs: { image: noopImage } }],
  });
  const studies = [];
  for (let i = 0; i < STUDIES; i++) {
    studies.push(
      await series(`e2e-tp-${STUDY_INSTANCES}-${i}`, STUDY_INSTANCES, {
        patientId: 'BENCH-TP',
        rows: 256,
        columns: 256,
      }),
    );
  }
  log(`throughput: ${STUDIES} studies x ${STUDY_INSTANCES} instances (256x256), ${SENDERS} parallel senders`);
  const tpBegin = Date.now();
  // Each service's peak RSS while the senders run and the runs finish (sampled every 100 ms from /proc).
  const peakRss = Object.fromEntries(Object.keys(stack.pids).map((name) => [name, 0]));
  const rssSampler = setInterval(() => {
    for (const [name, pid] of Object.entries(stack.pids))
      peakRss[name] = Math.max(peakRss[name] ?? 0, rssMb(pid));
  }, 100);
  const queue = [...studies];
  await Promise.all(
    Array.from({ length: SENDERS }, async () => {
      for (let files = queue.shift(); files; files = queue.shift())
        await storescu(Number(env.AE_PORT), env.AE_TITLE, files, dcmtkEnv);
    }),
  );
  let finished = [];
  for (;;) {
    const runs = await runsOf('bench-noop');
    finished = runs.filter((r) => r.finished !== null || r.status === 400);
    if (finished.length >= STUDIES) break;
    await sleep(100);
  }
  clearInterval(rssSampler);
  log(
    `throughput: peak RSS (MB) ${Object.entries(peakRss)
      .map(([name, mb]) => `${name} ${mb.toFixed(0)}`)
      .join(', ')}`,
  );
  const failed = finished.filter((r) => r.status === 400).length;
  if (failed > 0) throw new Error(`${failed} throughput runs failed`);
  const lastFinished = Math.max(...finished.map((r) => Date.parse(r.finished)));
  const tpSeconds = (lastFinished - tpBegin) / 1000;
  const runsPerHour = (STUDIES / tpSeconds) * 3600;
  log(`throughput: ${STUDIES} runs finished in ${fixed(tpSeconds)} s`);

  console.log(
    `RESULT overhead_s=${fixed(overhead)} e2e_s=${fixed(e2e)} baseline_s=${fixed(baseline)} container_s=${fixed(container)} runs_per_hour=${Math.round(runsPerHour)} s3_floor_s=${fixed(s3Floor)} overhead_beyond_s3_s=${fixed(overhead - s3Floor)} e2e_cold_s=${fixed(e2eCold)} docker_start_s=${fixed(dockerStart)} overhead_beyond_s3_and_engine_s=${fixed(beyondFloors)} receive_s=${fixed(receive)} ${Object.entries(
      peakRss,
    )
      .map(([name, mb]) => `peak_rss_${name.replace('-', '_')}_mb=${mb.toFixed(0)}`)
      .join(' ')} peak_rss_max_mb=${Math.max(...Object.values(peakRss)).toFixed(0)}`,
  );
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanUp().catch((err) => console.error('clean-up failed', err));
}

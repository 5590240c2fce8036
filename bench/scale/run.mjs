// Scale benchmark: studies of N small instances (N = 250, 2,000, 20,000 by default) and one instance of
// about 1 GB, each sent through the whole suite (started as `npm run stack` starts it) with a copy model to a
// dcmtk storescp. Prints per study the time per instance of each stage, end to end, the index and tar
// sizes, and every service's peak RSS and CPU seconds; the last line is `RESULT ...` (README.md).
// Not a test: nothing here asserts a time.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Buffer } from 'node:buffer';
import console from 'node:console';
import process from 'node:process';
import { ensureS3, rssMb } from '../lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(root, 'bench', '.work');
const SIZES = (process.env.BENCH_SCALE_SIZES ?? '250,2000,20000').split(',').map(Number);
const BIG_FRAMES = Number(process.env.BENCH_SCALE_BIG_FRAMES ?? 2048); // 512x512x2 bytes each: 1 GiB
const log = (message) => console.log(`[bench] ${message}`);
const fixed = (n, digits = 3) => n.toFixed(digits);

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

/** A series of `count` small CT instances in bench/.work, generated once and reused. */
async function smallSeries(count) {
  const dir = join(work, `scale-${count}`);
  // Beside the folder, not in it: storescu +sd sends every file of the folder.
  const marker = `${dir}.complete`;
  if (existsSync(marker) && Number(await readFile(marker, 'utf8')) === count) return dir;
  await rm(dir, { recursive: true, force: true });
  log(`generating ${count} instances (64x64) into ${dir}`);
  await rm(marker, { force: true });
  await helpers.generateCtSeries(dir, count, { rows: 64, columns: 64, patientId: `SCALE-${count}` });
  await writeFile(marker, String(count));
  return dir;
}

/** One enhanced multi-frame CT of `frames` 512x512 16-bit frames (1 GiB for 2048), made with dump2dcm. */
async function bigInstance(frames) {
  const dir = join(work, `scale-big-${frames}`);
  const file = join(dir, 'big.dcm');
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return file;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  log(`generating one instance of ${frames} frames (${fixed((frames * 512 * 512 * 2) / 2 ** 30, 2)} GiB)`);
  const frame = Buffer.alloc(512 * 512 * 2);
  for (let i = 0; i < frame.length; i += 2) frame.writeUInt16LE((i * 7) & 0x0fff, i);
  const pixels = join(dir, 'pixels.raw');
  await writeFile(pixels, '');
  const { open } = await import('node:fs/promises');
  const handle = await open(pixels, 'w');
  for (let f = 0; f < frames; f++) await handle.write(frame);
  await handle.close();
  const uid = () => helpers.newUid();
  const dump = [
    '(0008,0008) CS [ORIGINAL\\PRIMARY\\AXIAL\\NONE]',
    '(0008,0016) UI =EnhancedCTImageStorage',
    `(0008,0018) UI [${uid()}]`,
    '(0008,0060) CS [CT]',
    '(0010,0010) PN [Scale^Big]',
    '(0010,0020) LO [SCALE-BIG]',
    `(0020,000d) UI [${uid()}]`,
    `(0020,000e) UI [${uid()}]`,
    '(0020,0013) IS [1]',
    '(0028,0002) US 1',
    '(0028,0004) CS [MONOCHROME2]',
    `(0028,0008) IS [${frames}]`,
    '(0028,0010) US 512',
    '(0028,0011) US 512',
    '(0028,0100) US 16',
    '(0028,0101) US 12',
    '(0028,0102) US 11',
    '(0028,0103) US 0',
    '(7fe0,0010) OW =pixels.raw',
    '',
  ].join('\n');
  await writeFile(join(dir, 'big.dump'), dump);
  execFileSync('dump2dcm', ['-q', '+te', 'big.dump', 'big.dcm'], { cwd: dir });
  await rm(pixels);
  await writeFile(marker, '');
  return file;
}

function storescu(port, calledAe, files, env) {
  return new Promise((resolveRun, rejectRun) => {
    const begin = Date.now();
    const child = spawn('storescu', ['-aec', calledAe, '-nh', '+sd', '127.0.0.1', String(port), ...files], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', rejectRun);
    child.once('exit', (code) =>
      code === 0
        ? resolveRun({ begin, end: Date.now() })
        : rejectRun(new Error(`storescu exited ${code}: ${stderr.slice(-2000)}`)),
    );
  });
}

/** Peak RSS (MB) and CPU seconds of a process so far, from /proc. */
function usage(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { peakRssMb: hwm, cpuS: ticks / 100 };
  } catch {
    return { peakRssMb: 0, cpuS: 0 };
  }
}

const id = randomBytes(4).toString('hex');
const scratch = await mkdtemp(join(tmpdir(), 'dicomflow-bench-scale-'));
const cleanups = [];
const env = {
  ...helpers.testEnvironment(),
  RABBIT_EXCHANGE: `bench.scale-${id}`,
  RABBIT_QUEUE_PREFIX: `bench.scale-${id}.`,
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
  CONSUMER_WORK_DIR: join(scratch, 'consumer-work'),
  LOG_LEVEL: 'info',
  TRACKER_API_TOKEN: randomBytes(16).toString('hex'),
};

async function cleanUp() {
  for (const fn of cleanups.reverse()) await fn().catch((err) => log(`clean-up: ${err.message}`));
  await removeIsolatedStack(env);
  await rm(scratch, { recursive: true, force: true });
  await stopS3();
}

const results = [];
try {
  await mkdir(env.FLOW_DIRECTORY, { recursive: true });
  await mkdir(env.STATIC_DIRECTORY, { recursive: true });
  const shim = await helpers.nodelayShimPath(scratch);
  const dcmtkEnv = { ...process.env, LD_PRELOAD: shim };
  const studies = [];
  for (const n of SIZES) studies.push({ name: `${n} instances`, n, files: [await smallSeries(n)] });
  studies.push({ name: '1 instance of ~1 GB', n: 1, files: [await bigInstance(BIG_FRAMES)], big: true });

  const copyImage = await helpers.buildTestModelImage(helpers.COPY_MODEL);
  const destPort = await helpers.freePort();
  const destDir = join(scratch, 'destination');
  await mkdir(destDir, { recursive: true });
  const destination = await helpers.startDcmtkStorescp({
    port: destPort,
    outDir: destDir,
    aeTitle: 'DEST',
    env: dcmtkEnv,
  });
  cleanups.push(() => destination.stop());

  env.AE_PORT = String(await helpers.freePort());
  const stack = await startStack({
    env: { ...process.env, ...env },
    httpPorts: Object.fromEntries(STACK_SERVICES.map((name) => [name, 0])),
    dataDir: join(scratch, 'stack'),
    // BENCH_SCALE_LOG=<file>: the services' output lines go there (for a look at what a slow stage did).
    onLine: process.env.BENCH_SCALE_LOG
      ? (service, line) => appendFileSync(process.env.BENCH_SCALE_LOG, `${service} ${line}\n`)
      : () => {},
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
  await writeFile(
    join(env.FLOW_DIRECTORY, 'copy.yaml'),
    JSON.stringify({
      name: 'bench-scale',
      triggers: [{ PatientID: '^SCALE-' }],
      models: [{ docker_kwargs: { image: copyImage }, timeout: 3600 }],
      destinations: [{ host: '127.0.0.1', port: destPort, ae_title: 'DEST' }],
    }),
  );
  for (;;) {
    const body = await getJson(`${stack.urls.fingerprinter}/readyz`).catch(() => ({}));
    if ((body.details?.flows ?? []).some((f) => f.file === 'copy.yaml')) break;
    await sleep(50);
  }
  const s3 = createStorage(storageConfigFrom(loadConfig('storescp', { env: { ...process.env, ...env } })));

  // Each service's RSS, sampled while a study goes through: the peak of each study, not only of the run.
  // At each new peak, the service's own view (from its /metrics) says what the memory is: V8's heap, or
  // memory outside it (Buffers, ArrayBuffers), or neither (the allocator keeping freed pages).
  let studyPeaks = {};
  let peakBreakdown = {};
  const breakdown = async (name) => {
    const text = await globalThis.fetch(`${stack.urls[name]}/metrics`).then((r) => r.text());
    const metric = (key) =>
      Number(new RegExp(`^dicomflow_${key}\\{[^}]*\\} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
    return { heap: metric('nodejs_heap_size_total_bytes'), external: metric('nodejs_external_memory_bytes') };
  };
  const sampler = setInterval(() => {
    for (const name of STACK_SERVICES) {
      const rss = rssMb(stack.pids[name]);
      if (rss > (studyPeaks[name] ?? 0) + 4) {
        breakdown(name)
          .then((b) => (peakBreakdown[name] = { rss, ...b }))
          .catch(() => undefined);
      }
      studyPeaks[name] = Math.max(studyPeaks[name] ?? 0, rss);
    }
  }, 100);
  cleanups.push(async () => clearInterval(sampler));
  for (const study of studies) {
    studyPeaks = {};
    peakBreakdown = {};
    await rm(destDir, { recursive: true, force: true });
    await mkdir(destDir, { recursive: true });
    const before = (await getJson(`${tracker}/runs?flow=copy.yaml&limit=500`)).runs.length;
    log(`${study.name}: sending`);
    const sent = await storescu(Number(env.AE_PORT), env.AE_TITLE, study.files, dcmtkEnv);
    let run;
    for (;;) {
      const runs = (await getJson(`${tracker}/runs?flow=copy.yaml&limit=500`)).runs;
      run = runs.length > before ? runs[0] : undefined;
      if (run && (run.status === 4 || run.status === 400)) break;
      await sleep(200);
    }
    const detail = await getJson(`${tracker}/runs/${run.id}`);
    const received = (await readdir(destDir)).length;
    const ms = (from, to) => (from && to ? Date.parse(to) - Date.parse(from) : NaN);
    const step = detail.steps[0] ?? {};
    const stages = {
      receive: sent.end - sent.begin,
      publish: Date.parse(detail.received) - sent.end,
      matchAndDispatch: ms(detail.received, detail.dispatched),
      stageIn: step.waitingMs,
      model: step.runningMs,
      collect: ms(step.end, detail.finished),
      send: ms(detail.finished, detail.sent),
    };
    const e2e = Date.parse(detail.sent ?? detail.finished) - sent.begin;
    const keys = { tar: `${detail.receiptId}.tar`, index: `${detail.receiptId}.index.jsonl` };
    const tarInfo = await s3.stat(env.S3_BUCKET_INCOMING, keys.tar);
    const indexInfo = await s3.stat(env.S3_BUCKET_INCOMING, keys.index);
    const result = {
      name: study.name,
      n: study.n,
      big: study.big === true,
      status: run.status,
      failure: run.failure,
      received,
      e2eMs: e2e,
      stages,
      tarMb: (tarInfo?.size ?? 0) / 1e6,
      indexMb: (indexInfo?.size ?? 0) / 1e6,
    };
    results.push(result);
    const perInstance = Object.entries(stages)
      .map(([stage, value]) => `${stage} ${fixed(value / study.n, 2)}`)
      .join(', ');
    log(
      `${study.name}: status ${run.status}${run.failure ? ` (${run.failure.reason}: ${run.failure.message})` : ''}, ` +
        `${received} file(s) at the destination, end to end ${fixed(e2e / 1000)} s (${fixed(e2e / study.n, 2)} ms per instance)`,
    );
    log(`  ms per instance: ${perInstance}`);
    log(`  tar ${fixed(result.tarMb, 1)} MB, index ${fixed(result.indexMb, 1)} MB`);
    log(
      `  peak RSS during this study (MB, sampled every 100 ms): ${STACK_SERVICES.map(
        (name) => `${name} ${fixed(studyPeaks[name] ?? 0, 0)}`,
      ).join(', ')}`,
    );
    log(
      `  near each peak (MB: RSS = V8 heap + external + the rest): ${STACK_SERVICES.filter(
        (n) => peakBreakdown[n],
      )
        .map((n) => {
          const b = peakBreakdown[n];
          return `${n} ${fixed(b.rss, 0)} = ${fixed(b.heap, 0)} + ${fixed(b.external, 0)} + ${fixed(b.rss - b.heap - b.external, 0)}`;
        })
        .join(', ')}`,
    );
    const usages = STACK_SERVICES.map((name) => [name, usage(stack.pids[name])]);
    log(
      `  services so far (peak RSS MB / CPU s): ${usages
        .map(([name, u]) => `${name} ${fixed(u.peakRssMb, 0)}/${fixed(u.cpuS, 1)}`)
        .join(', ')}`,
    );
  }

  const usages = Object.fromEntries(STACK_SERVICES.map((name) => [name, usage(stack.pids[name])]));
  const peakRssMax = Math.max(...Object.values(usages).map((u) => u.peakRssMb));
  const small = results.filter((r) => !r.big);
  const first = small[0];
  const last = small[small.length - 1];
  const ratio = last.e2eMs / last.n / (first.e2eMs / first.n);
  const big = results.find((r) => r.big);
  console.log(
    `RESULT ratio_per_instance_${last.n}_vs_${first.n}=${fixed(ratio)} peak_rss_max_mb=${fixed(peakRssMax, 0)} ` +
      `big_instance_ok=${big?.status === 4 ? 1 : 0} ` +
      small
        .map((r) => `ms_per_instance_${r.n}=${fixed(r.e2eMs / r.n, 2)} status_${r.n}=${r.status}`)
        .join(' ') +
      ` big_instance_s=${fixed((big?.e2eMs ?? 0) / 1000)} ` +
      STACK_SERVICES.map(
        (name) => `rss_${name.replace('-', '_')}_mb=${fixed(usages[name].peakRssMb, 0)}`,
      ).join(' '),
  );
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanUp().catch((err) => console.error('clean-up failed', err));
}

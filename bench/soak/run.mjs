#!/usr/bin/env node
// Soak (issue 16): the whole suite under bench/e2e's throughput load (parallel dcmtk senders, studies of 50
// CT instances of 256x256, a copy model, a dcmtk destination; paced to what the suite delivers) for SOAK_MINUTES (30), with a kill -9 of a
// random service every SOAK_KILL_EVERY_S (300) seconds, started again at once as a supervisor would, and
// one restart of RabbitMQ (a node of the soak's own) half-way. Then it waits for the suite to drain and
// prints what was sent (instances that got a success status), delivered, failed (in a run that failed
// with a reason) and lost (neither), and the peak RSS of each service. Not part of CI.
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Buffer } from 'node:buffer';
import console from 'node:console';
import process from 'node:process';
import { ensureS3, positiveInt, rssMb } from '../lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MINUTES = positiveInt('SOAK_MINUTES', 30);
const KILL_EVERY_S = positiveInt('SOAK_KILL_EVERY_S', 300);
const SENDERS = positiveInt('SOAK_SENDERS', 4);
const STUDY_INSTANCES = positiveInt('SOAK_STUDY_INSTANCES', 50);
const DRAIN_MINUTES = positiveInt('SOAK_DRAIN_MINUTES', 15);
// Studies accepted but not yet delivered that the senders allow before they wait: the load is paced to
// what the suite delivers (bench/e2e's throughput is the suite's own), instead of piling up a backlog.
const MAX_BACKLOG = positiveInt('SOAK_MAX_BACKLOG', 8);
const log = (message) => console.log(`[soak ${new Date().toISOString().slice(11, 19)}] ${message}`);

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

const id = randomBytes(4).toString('hex');
const scratch = await mkdtemp(join(tmpdir(), 'dicomflow-soak-'));
const cleanups = [];
const rabbit = await helpers.startRabbitNode();
log(`RabbitMQ: a node of the soak's own (${rabbit.node}, port ${rabbit.port})`);
const env = {
  ...helpers.testEnvironment(),
  RABBIT_HOSTNAME: '127.0.0.1',
  RABBIT_PORT: String(rabbit.port),
  RABBIT_EXCHANGE: `soak-${id}`,
  RABBIT_QUEUE_PREFIX: `soak-${id}.`,
  S3_BUCKET_INCOMING: `soak-${id}-incoming`,
  S3_BUCKET_RUNS: `soak-${id}-runs`,
  S3_BUCKET_STATIC: `soak-${id}-static`,
  SCHEDULER_DB_SCHEMA: `soak_${id}_scheduler`,
  TRACKER_DB_SCHEMA: `soak_${id}_tracker`,
  SENDER_DB_SCHEMA: `soak_${id}_sender`,
  AE_TITLE: 'DICOMFLOW',
  AE_HOSTNAME: '127.0.0.1',
  HTTP_HOST: '127.0.0.1',
  FLOW_DIRECTORY: join(scratch, 'flows'),
  STATIC_DIRECTORY: join(scratch, 'static'),
  SPOOL_DIR: join(scratch, 'spool'),
  SENDER_SPOOL_DIR: join(scratch, 'sender'),
  CONSUMER_WORK_DIR: join(scratch, 'consumer-work'),
  CONSUMER_ID: `soak-${id}`,
  CPUS: '2',
  LOG_LEVEL: 'info',
  TRACKER_API_TOKEN: randomBytes(16).toString('hex'),
  SEND_RETRY_INITIAL_MS: '1000',
  SEND_RETRY_MAX_MS: '10000',
  ...(process.env.SOAK_ENV ? JSON.parse(process.env.SOAK_ENV) : {}),
};

/** A study template: generated once, then copied with fresh UIDs of the same lengths per study. */
async function template() {
  const dir = join(root, 'bench', '.work', `soak-${STUDY_INSTANCES}`);
  const marker = join(dir, '.complete');
  if (!existsSync(marker)) {
    await rm(dir, { recursive: true, force: true });
    await helpers.generateCtSeries(dir, STUDY_INSTANCES, {
      patientId: 'SOAK-000000',
      rows: 256,
      columns: 256,
    });
    await writeFile(marker, '1');
  }
  const files = (await readdir(dir)).filter((f) => f.endsWith('.dcm')).sort();
  const buffers = await Promise.all(files.map((f) => readFile(join(dir, f))));
  const metas = await Promise.all(files.map((f) => helpers.readFileMeta(join(dir, f))));
  // Every instance shares the study and series UIDs (dcmdump prints the two in tag order).
  const dump = execFileSync(
    'dcmdump',
    ['+P', 'StudyInstanceUID', '+P', 'SeriesInstanceUID', join(dir, files[0])],
    { encoding: 'utf8' },
  );
  const [studyUid, seriesUid] = [...dump.matchAll(/\[([0-9.]+)\]/g)].map((m) => m[1]);
  return { buffers, sopUids: metas.map((m) => m.sopInstanceUid), studyUid, seriesUid };
}

/** A UID of exactly `length` characters under 2.25 (decimal digits, no leading zero). */
function uidOfLength(length) {
  let digits = String(randomInt(1, 10));
  while (digits.length < length - 5) digits += String(randomInt(0, 10));
  return `2.25.${digits}`;
}

function replaceAll(buffer, from, to) {
  const needle = Buffer.from(from, 'latin1');
  const replacement = Buffer.from(to, 'latin1');
  for (let at = buffer.indexOf(needle); at !== -1; at = buffer.indexOf(needle, at + needle.length)) {
    replacement.copy(buffer, at);
  }
}

let studyCounter = 0;
/** Writes one study with fresh UIDs and a patient id of its own; returns its files and SOP UIDs. */
async function newStudy(tpl, dir) {
  const n = ++studyCounter;
  const patientId = `SOAK-${String(n).padStart(6, '0')}`;
  const studyDir = join(dir, String(n));
  await mkdir(studyDir, { recursive: true });
  const uids = [];
  const studyUid = tpl.studyUid;
  const seriesUid = tpl.seriesUid;
  const newStudyUid = uidOfLength(studyUid.length);
  const newSeriesUid = uidOfLength(seriesUid.length);
  const files = [];
  for (let i = 0; i < tpl.buffers.length; i++) {
    const buffer = Buffer.from(tpl.buffers[i]);
    const sop = tpl.sopUids[i];
    const newSop = uidOfLength(sop.length);
    replaceAll(buffer, sop, newSop);
    replaceAll(buffer, studyUid, newStudyUid);
    replaceAll(buffer, seriesUid, newSeriesUid);
    replaceAll(buffer, 'SOAK-000000', patientId);
    const file = join(studyDir, `${String(i).padStart(4, '0')}.dcm`);
    await writeFile(file, buffer);
    files.push(file);
    uids.push(newSop);
  }
  return { n, patientId, studyUid: newStudyUid, files, uids };
}

/** storescu -v: the SOP UIDs that got a success response, in file order. */
async function send(port, study, dcmtkEnv) {
  const result = await helpers.storescu({
    port,
    calledAe: env.AE_TITLE,
    callingAe: 'SOAK',
    files: study.files,
    extraArgs: ['-v'],
    env: dcmtkEnv,
    timeoutMs: 600_000,
  });
  const accepted = [];
  let current;
  for (const line of `${result.stdout}\n${result.stderr}`.split('\n')) {
    const sending = /Sending file: (.+)$/.exec(line);
    if (sending) current = study.uids[study.files.indexOf(sending[1].trim())];
    else if (current && /Received Store Response \((Success|Warning)/.test(line)) {
      accepted.push(current);
      current = undefined;
    }
  }
  return accepted;
}

async function cleanUp() {
  for (const fn of cleanups.reverse()) await fn().catch((err) => log(`clean-up: ${err.message}`));
  // The schemas and buckets while the soak's RabbitMQ node still answers; the node (and its queues) last.
  await removeIsolatedStack(env).catch((err) => log(`clean-up: ${err.message}`));
  await rabbit.close().catch((err) => log(`clean-up: ${err.message}`));
  await rm(scratch, { recursive: true, force: true });
  await stopS3();
}

try {
  for (const dir of [env.FLOW_DIRECTORY, env.STATIC_DIRECTORY]) await mkdir(dir, { recursive: true });
  const shim = await helpers.nodelayShimPath(scratch);
  const dcmtkEnv = { ...process.env, LD_PRELOAD: shim };
  const tpl = await template();
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

  // Each service a process handle of its own on a fixed port, so one can be killed and started again.
  env.AE_PORT = String(await helpers.freePort());
  const ports = {};
  for (const name of STACK_SERVICES) ports[name] = await helpers.freePort();
  const output = [];
  const handles = new Map();
  const unexpected = [];
  const start = (name, ensureBuckets) =>
    startStack({
      env: { ...process.env, ...env },
      services: [name],
      httpPorts: ports,
      dataDir: join(scratch, 'stack'),
      onLine: (service, line) => {
        output.push(`[${service}] ${line}`);
        if (output.length > 300) output.shift();
      },
      onExit: (service, code, signal) => unexpected.push(`${service} exited (${code ?? signal})`),
      waitFor: 'readyz',
      readyTimeoutMs: 180_000,
      ensureBuckets,
    });
  for (const name of STACK_SERVICES) handles.set(name, await start(name, handles.size === 0));
  cleanups.push(async () => {
    for (const handle of handles.values()) await handle.stop();
  });
  const tracker = `http://127.0.0.1:${ports['flow-tracker']}`;
  await writeFile(
    join(env.FLOW_DIRECTORY, 'soak.yaml'),
    JSON.stringify({
      name: 'soak',
      triggers: [{ PatientID: '^SOAK-' }],
      models: [{ docker_kwargs: { image: copyImage } }],
      destinations: [{ host: '127.0.0.1', port: destPort, ae_title: 'DEST' }],
    }),
  );
  await sleep(2_000);

  // Peak RSS per service, sampled every second over whichever process is the service now.
  const peak = Object.fromEntries(STACK_SERVICES.map((name) => [name, 0]));
  const sampler = setInterval(() => {
    for (const [name, handle] of handles) peak[name] = Math.max(peak[name], rssMb(handle.pids[name]));
  }, 1000);
  cleanups.push(async () => clearInterval(sampler));

  // Delivered SOP UIDs: dcmtk storescp names each file <modality>.<SOP Instance UID>; files are removed
  // once counted, so the disk holds only the last minute's.
  const delivered = new Set();
  // Studies with an accepted instance not delivered yet.
  const pending = new Set();
  const collect = async () => {
    for (const name of await readdir(destDir).catch(() => [])) {
      const uid = name.replace(/^[A-Z]+\./, '');
      delivered.add(uid);
      await rm(join(destDir, name), { force: true });
    }
    for (const study of pending) if (study.accepted.every((uid) => delivered.has(uid))) pending.delete(study);
  };

  const studies = [];
  const began = Date.now();
  const endAt = began + MINUTES * 60_000;
  let sending = true;
  const aePort = Number(env.AE_PORT);
  const senders = Array.from({ length: SENDERS }, async () => {
    while (sending && Date.now() < endAt) {
      if (pending.size >= MAX_BACKLOG) {
        await sleep(100);
        continue;
      }
      const study = await newStudy(tpl, join(scratch, 'studies'));
      const accepted = await send(aePort, study, dcmtkEnv).catch(() => []);
      const sent = { ...study, accepted };
      studies.push(sent);
      if (accepted.length > 0) pending.add(sent);
      await rm(join(scratch, 'studies', String(study.n)), { recursive: true, force: true });
    }
  });

  // The faults: a kill -9 every KILL_EVERY_S, RabbitMQ restarted once half-way.
  const faults = [];
  const faulting = (async () => {
    let next = began + KILL_EVERY_S * 1000;
    let rabbitDone = false;
    let loggedMinute = 0;
    const rabbitAt = began + (MINUTES * 60_000) / 2 + 30_000;
    while (Date.now() < endAt) {
      await sleep(1000);
      await collect();
      if (!rabbitDone && Date.now() >= rabbitAt) {
        rabbitDone = true;
        log('fault: RabbitMQ restart');
        await rabbit.stop();
        await sleep(5_000);
        await rabbit.start();
        faults.push('rabbitmq restart');
      }
      if (Date.now() >= next && Date.now() < endAt) {
        next += KILL_EVERY_S * 1000;
        const name = STACK_SERVICES[randomInt(STACK_SERVICES.length)];
        const handle = handles.get(name);
        log(`fault: kill -9 ${name} (pid ${handle.pids[name]})`);
        process.kill(handle.pids[name], 'SIGKILL');
        await handle.stop();
        handles.set(name, await start(name, false));
        faults.push(`kill -9 ${name}`);
        log(`${name} is back`);
      }
      const minute = Math.floor((Date.now() - began) / 60_000);
      if (minute > loggedMinute) {
        loggedMinute = minute;
        const sent = studies.reduce((n, s) => n + s.accepted.length, 0);
        log(`${minute} min: ${studies.length} studies, ${sent} instances sent, ${delivered.size} delivered`);
      }
    }
  })();
  await Promise.all([...senders, faulting]);
  sending = false;
  log(`sending stopped after ${((Date.now() - began) / 60_000).toFixed(1)} min; draining`);

  // Drain: every study that had an accepted instance is delivered or has a failed run, or time is up.
  const drainUntil = Date.now() + DRAIN_MINUTES * 60_000;
  for (;;) {
    await collect();
    if (pending.size === 0 || Date.now() > drainUntil) break;
    await sleep(5_000);
  }
  // Failed runs: their studies' instances count as failed, not lost (when the run says why).
  const failedStudyUids = new Set();
  for (let offset = 0; ; offset += 500) {
    const response = await globalThis.fetch(
      `${tracker}/runs?flow=soak&status=400&limit=500&offset=${offset}`,
      { headers: { authorization: `Bearer ${env.TRACKER_API_TOKEN}` } },
    );
    const page = response.ok ? (await response.json()).runs : [];
    for (const run of page) if (run.failure) failedStudyUids.add(run.uid);
    if (page.length < 500) break;
  }
  const failedStudies = new Set(studies.filter((s) => failedStudyUids.has(s.studyUid)).map((s) => s.n));
  let sentCount = 0;
  let deliveredCount = 0;
  let failedCount = 0;
  let lostCount = 0;
  for (const study of studies) {
    for (const uid of study.accepted) {
      sentCount++;
      if (delivered.has(uid)) deliveredCount++;
      else if (failedStudies.has(study.n)) failedCount++;
      else lostCount++;
    }
  }
  const refused = studies.reduce((n, s) => n + s.files.length - s.accepted.length, 0);
  log(`faults: ${faults.join(', ')}`);
  log(`unexpected exits: ${unexpected.length === 0 ? 'none' : unexpected.join(', ')}`);
  log(
    `studies ${studies.length}; instances offered ${sentCount + refused}, not accepted ${refused} (in flight at a receiver kill)`,
  );
  log(`peak RSS (MB): ${STACK_SERVICES.map((name) => `${name} ${Math.round(peak[name])}`).join(', ')}`);
  if (lostCount > 0) log(`last service output:\n${output.slice(-60).join('\n')}`);
  console.log(
    `RESULT minutes=${MINUTES} studies=${studies.length} sent=${sentCount} delivered=${deliveredCount} failed=${failedCount} lost=${lostCount} kills=${faults.filter((f) => f.startsWith('kill')).length} rabbit_restarts=${faults.filter((f) => f.startsWith('rabbit')).length} ` +
      STACK_SERVICES.map((name) => `peak_rss_${name.replace('-', '_')}_mb=${Math.round(peak[name])}`).join(
        ' ',
      ),
  );
  if (lostCount > 0) process.exitCode = 1;
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanUp().catch((err) => console.error('clean-up failed', err));
}

// Ingest benchmark: dcmtk storescp vs our storescp, same sender (dcmtk storescu), same files.
// Prints what it does and, last, one `RESULT key=value ...` line (see README.md). Not a test.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import console from 'node:console';
import process from 'node:process';
import { ensureS3, positiveInt } from '../lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(root, 'bench', '.work');
const ROUNDS = 3;
const PARALLEL_SENDERS = 4;

const INSTANCES = positiveInt('BENCH_INSTANCES', 200);
const BIG_INSTANCES = positiveInt('BENCH_BIG_INSTANCES', 2000);
const NAGLE_INSTANCES = positiveInt('BENCH_NAGLE_INSTANCES', 100);
// Ours in the parallel step: with this many receiver worker processes, and as one process beside it.
const RECEIVER_WORKERS = positiveInt('BENCH_RECEIVER_WORKERS', 2);

// The helpers are TypeScript; the bench uses their build (tsc --build is a no-op when up to date).
execFileSync(
  process.execPath,
  [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--build', 'test/helpers'],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
const stopS3 = await ensureS3();
const helpers = await import('@dicomflow/test-helpers');
const { startOurs, startPeer } = await import('./receivers.mjs');
const { MB, cpuMs, fixed, median, sampleRss, timedSend } = await import('./measure.mjs');

const log = (message) => console.log(`[bench] ${message}`);
const live = new Set();

async function started(receiverPromise) {
  const receiver = await receiverPromise;
  live.add(receiver);
  return receiver;
}

async function stopped(receiver) {
  live.delete(receiver);
  await receiver.stop();
}

async function stopAll() {
  await Promise.allSettled([...live].map((r) => r.stop()));
  live.clear();
}

/** A series in bench/.work, generated once and reused while its marker says it is complete. */
async function series(name, count, size = {}) {
  const dir = join(work, name);
  const marker = join(dir, '.complete');
  if (existsSync(marker) && Number(await readFile(marker, 'utf8')) === count) {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.dcm')).sort();
    log(`reusing ${files.length} instances in ${dir}`);
    return files.map((f) => join(dir, f));
  }
  await rm(dir, { recursive: true, force: true });
  const begin = performance.now();
  const files = await helpers.generateCtSeries(dir, count, {
    patientId: 'BENCH',
    patientName: 'Bench^Ingest',
    ...size,
  });
  await writeFile(marker, String(count));
  log(`generated ${count} instances in ${((performance.now() - begin) / 1000).toFixed(1)} s into ${dir}`);
  return files;
}

async function datasetBytes(files) {
  let total = 0;
  for (const file of files) {
    const [{ size }, meta] = await Promise.all([stat(file), helpers.readFileMeta(file)]);
    total += size - meta.datasetOffset;
  }
  return total;
}

/**
 * Sends `files` once to a fresh receiver (the cold send: its first association), waits until it has nothing
 * left to do (ours uploads and publishes the receipt), then sends them again (the warm send: a receiver
 * that has been running, as in service). Returns the seconds of both and the receiver CPU of the warm one.
 */
async function coldThenWarm(receiver, send) {
  const cold = await send();
  await receiver.settled();
  const before = await cpuMs(receiver.pid);
  const warm = await send();
  const cpu = (await cpuMs(receiver.pid)) - before;
  return { cold, warm, cpu };
}

/**
 * One fresh receiver per side and round, alternating peer/ours, each measured cold then warm
 * ({@link coldThenWarm}); returns the medians of each side.
 */
async function singleAssociation(files, shim) {
  const seconds = { peer: [], ours: [], peerCold: [], oursCold: [] };
  const cpu = { peer: [], ours: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const side of ['peer', 'ours']) {
      const receiver = await started(
        side === 'peer' ? startPeer({ work, shim }) : startOurs({ work, root, shim }),
      );
      try {
        const s = await coldThenWarm(receiver, () => timedSend({ port: receiver.port, files, shim }));
        seconds[side].push(s.warm);
        seconds[`${side}Cold`].push(s.cold);
        cpu[side].push(s.cpu);
        log(
          `single  round ${round} ${receiver.name}: cold ${s.cold.toFixed(3)} s, warm ${s.warm.toFixed(3)} s, ` +
            `receiver CPU (warm) ${s.cpu.toFixed(0)} ms`,
        );
      } finally {
        await stopped(receiver);
      }
    }
  }
  return {
    peer: median(seconds.peer),
    ours: median(seconds.ours),
    peerCold: median(seconds.peerCold),
    oursCold: median(seconds.oursCold),
    peerCpuMs: median(cpu.peer),
    oursCpuMs: median(cpu.ours),
  };
}

/** The receivers of the parallel step: dcmtk forking per association, ours with workers, ours alone. */
function parallelReceiver(side, shim) {
  switch (side) {
    case 'peer':
      return startPeer({ work, shim, fork: true });
    case 'ours':
      return startOurs({ work, root, shim, fork: true, workers: RECEIVER_WORKERS });
    case 'oursSingle':
      return startOurs({ work, root, shim, fork: true });
  }
  throw new Error(`unknown side ${side}`);
}

/**
 * PARALLEL_SENDERS storescu at once, each with its own quarter of the files; wall time of all. Ours runs
 * with RECEIVER_WORKERS worker processes (`ours`) and as the single process (`oursSingle`), alternating.
 */
async function parallelAssociations(files, shim) {
  const shares = Array.from({ length: PARALLEL_SENDERS }, (_, i) =>
    files.filter((_, j) => j % PARALLEL_SENDERS === i),
  );
  const sides = ['peer', 'ours', 'oursSingle'];
  const seconds = Object.fromEntries(
    sides.flatMap((side) => [
      [side, []],
      [`${side}Cold`, []],
    ]),
  );
  for (let round = 1; round <= ROUNDS; round++) {
    for (const side of sides) {
      const receiver = await started(parallelReceiver(side, shim));
      try {
        const s = await coldThenWarm(receiver, async () => {
          const begin = performance.now();
          await Promise.all(shares.map((share) => timedSend({ port: receiver.port, files: share, shim })));
          return (performance.now() - begin) / 1000;
        });
        seconds[side].push(s.warm);
        seconds[`${side}Cold`].push(s.cold);
        log(
          `parallel round ${round} ${receiver.name}: cold ${s.cold.toFixed(3)} s, warm ${s.warm.toFixed(3)} s`,
        );
      } finally {
        await stopped(receiver);
      }
    }
  }
  return Object.fromEntries(Object.entries(seconds).map(([key, values]) => [key, median(values)]));
}

/**
 * Ours with one of its defaults on, single association, median warm seconds: `fsync` (SPOOL_FSYNC=true, each
 * instance fsync'd before its success response) or `early` (RECEIPT_EARLY_UPLOAD=true, the receipt tar
 * uploaded to S3 while the association runs, so on this machine S3 competes with receiving for the cores).
 */
async function singleAssociationWith(files, shim, { fsync = false, early = false }) {
  const seconds = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const receiver = await started(startOurs({ work, root, shim, fsync, early }));
    try {
      const s = await coldThenWarm(receiver, () => timedSend({ port: receiver.port, files, shim }));
      seconds.push(s.warm);
      log(
        `single  round ${round} ${receiver.name}: cold ${s.cold.toFixed(3)} s, warm ${s.warm.toFixed(3)} s`,
      );
    } finally {
      await stopped(receiver);
    }
  }
  return median(seconds);
}

/** Sends the big series to ours in one association while sampling its RSS; returns the peak in MB. */
async function memory(files, shim) {
  const receiver = await started(startOurs({ work, root, shim }));
  const sampler = sampleRss(receiver.pid);
  try {
    const s = await timedSend({ port: receiver.port, files, shim });
    const rss = await sampler.stop();
    log(
      `memory  ${files.length} instances to ${receiver.name} in ${s.toFixed(1)} s: peak RSS ${fixed(rss.peakMb)} MB ` +
        `(VmHWM ${fixed(rss.hwmMb)}, max of ${rss.samples} VmRSS samples ${fixed(rss.sampledPeakMb)})`,
    );
    return rss.peakMb;
  } finally {
    await sampler.stop();
    await stopped(receiver);
  }
}

/**
 * Debian's storescu as it is (no shim: Nagle on, delayed ACKs on) sending small instances to each receiver,
 * itself without the shim: dcmtk's storescp waits out the delayed ACK on every message, ours acknowledges
 * at once (TCP_QUICKACK). Median instances per second of each side.
 */
async function nagle(files) {
  const seconds = { peer: [], ours: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const side of ['peer', 'ours']) {
      const receiver = await started(
        side === 'peer' ? startPeer({ work, shim: '' }) : startOurs({ work, root, shim: '' }),
      );
      try {
        const s = await coldThenWarm(receiver, () => timedSend({ port: receiver.port, files, shim: '' }));
        seconds[side].push(s.warm);
        log(`nagle   round ${round} ${receiver.name}: ${(files.length / s.warm).toFixed(1)} instances/s`);
      } finally {
        await stopped(receiver);
      }
    }
  }
  return { peerIps: files.length / median(seconds.peer), oursIps: files.length / median(seconds.ours) };
}

async function main() {
  await mkdir(work, { recursive: true });
  const shim = await helpers.nodelayShimPath(work);
  log(`sender: dcmtk storescu with LD_PRELOAD=${shim} (TCP_NODELAY + TCP_QUICKACK)`);
  const files = await series(`series-${INSTANCES}`, INSTANCES);
  const bytes = await datasetBytes(files);
  log(`${INSTANCES} instances, ${(bytes / MB).toFixed(1)} MB of dataset bytes`);

  const small = await series(`series-small-${NAGLE_INSTANCES}`, NAGLE_INSTANCES, { rows: 64, columns: 64 });
  log(`nagle: ${NAGLE_INSTANCES} small instances, sender and receivers without the shim`);
  const nagled = await nagle(small);
  log(
    `nagle: ours ${fixed(nagled.oursIps)} instances/s, dcmtk storescp ${fixed(nagled.peerIps)} ` +
      `(ours ${fixed(nagled.oursIps / nagled.peerIps)}x)`,
  );
  if (process.env.BENCH_NAGLE_ONLY === '1') {
    console.log(
      `RESULT nagle_ratio_ips=${fixed(nagled.oursIps / nagled.peerIps)} nagle_ours_ips=${fixed(nagled.oursIps)} ` +
        `nagle_peer_ips=${fixed(nagled.peerIps)}`,
    );
    return;
  }

  // One unmeasured send first, so the first measured round does not pay for cold caches.
  const warmUp = await started(startPeer({ work, shim }));
  try {
    await timedSend({ port: warmUp.port, files, shim });
  } finally {
    await stopped(warmUp);
  }
  const single = await singleAssociation(files, shim);
  const singleFsync = await singleAssociationWith(files, shim, { fsync: true });
  const singleEarly = await singleAssociationWith(files, shim, { early: true });
  const parallel = await parallelAssociations(files, shim);
  const big = await series(`series-big-${BIG_INSTANCES}`, BIG_INSTANCES);
  log(
    `big series: ${BIG_INSTANCES} instances, ${((await datasetBytes(big)) / MB).toFixed(1)} MB of dataset bytes`,
  );
  const peakRssMb = await memory(big, shim);

  const mbps = (s) => bytes / MB / s;
  const ips = (s) => INSTANCES / s;
  console.log('');
  console.log(`                      peer (dcmtk)          ours`);
  console.log(`single   MB/s         ${fixed(mbps(single.peer)).padEnd(22)}${fixed(mbps(single.ours))}`);
  console.log(
    `single   MB/s, cold   ${fixed(mbps(single.peerCold)).padEnd(22)}${fixed(mbps(single.oursCold))}`,
  );
  console.log(`single   instances/s  ${fixed(ips(single.peer)).padEnd(22)}${fixed(ips(single.ours))}`);
  console.log(`single   MB/s, ours with SPOOL_FSYNC=true: ${fixed(mbps(singleFsync))}`);
  console.log(`single   MB/s, ours with RECEIPT_EARLY_UPLOAD=true: ${fixed(mbps(singleEarly))}`);
  // CPU per byte barely depends on the machine's load, unlike the wall times above.
  const cpuPerGb = (ms) => (ms / (bytes / MB)) * 1000;
  console.log(
    `single   receiver CPU ms per GB ${fixed(cpuPerGb(single.peerCpuMs)).padEnd(22)}${fixed(cpuPerGb(single.oursCpuMs))}`,
  );
  console.log(
    `parallel MB/s         ${fixed(mbps(parallel.peer)).padEnd(22)}${fixed(mbps(parallel.ours))} ` +
      `(RECEIVER_WORKERS=${RECEIVER_WORKERS}; one process: ${fixed(mbps(parallel.oursSingle))})`,
  );
  console.log(
    `parallel instances/s  ${fixed(ips(parallel.peer)).padEnd(22)}${fixed(ips(parallel.ours))} ` +
      `(one process: ${fixed(ips(parallel.oursSingle))})`,
  );
  console.log(
    `parallel MB/s, cold   ${fixed(mbps(parallel.peerCold)).padEnd(22)}${fixed(mbps(parallel.oursCold))} ` +
      `(one process: ${fixed(mbps(parallel.oursSingleCold))})`,
  );
  console.log(`ours peak RSS (${BIG_INSTANCES} instances): ${fixed(peakRssMb)} MB`);
  console.log('');
  console.log(
    `RESULT ratio_mbps=${fixed(mbps(single.ours) / mbps(single.peer))} ` +
      `ratio_parallel_mbps=${fixed(mbps(parallel.ours) / mbps(parallel.peer))} ` +
      `ours_mbps=${fixed(mbps(single.ours))} peer_mbps=${fixed(mbps(single.peer))} ` +
      `ours_parallel_mbps=${fixed(mbps(parallel.ours))} peer_parallel_mbps=${fixed(mbps(parallel.peer))} ` +
      `receiver_workers=${RECEIVER_WORKERS} ` +
      `ratio_parallel_single_mbps=${fixed(mbps(parallel.oursSingle) / mbps(parallel.peer))} ` +
      `ours_parallel_single_mbps=${fixed(mbps(parallel.oursSingle))} ` +
      `ours_fsync_mbps=${fixed(mbps(singleFsync))} ours_early_upload_mbps=${fixed(mbps(singleEarly))} ` +
      `peak_rss_mb=${fixed(peakRssMb)} ` +
      `ratio_cold_mbps=${fixed(mbps(single.oursCold) / mbps(single.peerCold))} ` +
      `ratio_parallel_cold_mbps=${fixed(mbps(parallel.oursCold) / mbps(parallel.peerCold))} ` +
      `nagle_ratio_ips=${fixed(nagled.oursIps / nagled.peerIps)} nagle_ours_ips=${fixed(nagled.oursIps)} ` +
      `nagle_peer_ips=${fixed(nagled.peerIps)}`,
  );
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    log(`${signal}: stopping receivers`);
    void stopAll().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (error) {
  console.error(`[bench] failed: ${error instanceof Error ? error.stack : String(error)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  await stopS3();
}

// Send benchmark: our C-STORE SCU (@dicomflow/dicom StoreAssociation, as the sender uses it) vs dcmtk
// storescu and dcmjs-dimse's Client, same files, same receiver (dcmtk storescp, bit-preserving, writing to
// a temp folder), one association each. Prints what it does and, last, one `RESULT key=value ...` line.
// Not a test.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import console from 'node:console';
import process from 'node:process';
import { ensureS3 } from '../lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(root, 'bench', '.work');
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

// The packages are TypeScript; the bench uses their build (tsc --build is a no-op when up to date).
execFileSync(
  process.execPath,
  [
    join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
    '--build',
    'test/helpers',
    'packages/dicom',
    'packages/runtime',
  ],
  { cwd: root, stdio: 'inherit' },
);
execFileSync(process.execPath, [join(root, 'packages', 'runtime', 'scripts', 'build-native.mjs')], {
  cwd: root,
  stdio: 'inherit',
});
await ensureS3(); // a MinIO of its own unless S3_ENDPOINT names one; stopped when the process exits
const helpers = await import('@dicomflow/test-helpers');
const dicom = await import('@dicomflow/dicom');
const runtime = await import('@dicomflow/runtime');
// dcmjs-dimse is a CommonJS bundle (a dependency of services/storescp, hoisted to the root node_modules).
const { default: dimse } = await import('dcmjs-dimse');
// Its log starts at trace; logging every PDU would measure the console, not the SCU.
dimse.log.setLevel('error');
const NAGLE_INSTANCES = Number(process.env.BENCH_NAGLE_INSTANCES ?? 100);
const log = (message) => console.log(`[bench] ${message}`);

async function series(name, count, size = {}) {
  const dir = join(work, name);
  const marker = join(dir, '.complete');
  if (existsSync(marker) && Number(await readFile(marker, 'utf8')) === count) {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.dcm')).sort();
    return files.map((f) => join(dir, f));
  }
  await rm(dir, { recursive: true, force: true });
  const files = await helpers.generateCtSeries(dir, count, {
    patientId: 'BENCH',
    patientName: 'Bench^Send',
    ...size,
  });
  await writeFile(marker, String(count));
  return files;
}

async function sendOurs(files, port, onSocket = runtime.acknowledgePromptly) {
  const begin = performance.now();
  // As the sender does after unpacking a tar: meta groups read 16 files at a time.
  const instances = [];
  for (let at = 0; at < files.length; at += 16)
    instances.push(...(await Promise.all(files.slice(at, at + 16).map((f) => dicom.readInstanceFile(f)))));
  const pairs = new Map();
  for (const i of instances) pairs.set(`${i.sopClassUid}|${i.transferSyntaxUid}`, i);
  const contexts = [...pairs.values()].map((i, n) => ({
    id: n * 2 + 1,
    abstractSyntax: i.sopClassUid,
    transferSyntaxes: [i.transferSyntaxUid],
  }));
  const association = await dicom.StoreAssociation.open({
    host: '127.0.0.1',
    port,
    callingAeTitle: 'BENCH',
    calledAeTitle: 'STORESCP',
    contexts,
    timeoutMs: 60_000,
    onSocket,
  });
  for (const [index, instance] of instances.entries()) {
    const context = association.contextFor(instance.sopClassUid, [instance.transferSyntaxUid]);
    const response = await association.store(instance, context.id, instances[index + 1]);
    if (!dicom.isStoredStatus(response.status)) throw new Error(`status ${response.status}`);
  }
  await association.release();
  return performance.now() - begin;
}

async function sendDcmtk(files, port, env) {
  const begin = performance.now();
  const result = await helpers.storescu({ port, calledAe: 'STORESCP', files, timeoutMs: 300_000, env });
  if (result.code !== 0) throw new Error(`storescu failed: ${result.stderr}`);
  return performance.now() - begin;
}

/**
 * dcmjs-dimse's Client: one CStoreRequest per file (each read and parsed by the library), all in one
 * association; resolves when the socket has closed after the release, and only if every file got a
 * success response. Its socket keeps Nagle on: `Client#send` passes no socket options to `net.connect`
 * (0.3.3 has no noDelay option and does not expose the socket). With the receiver's shim acknowledging at
 * once that costs nothing measurable (a probe patching `net.connect` to set it gave the same times).
 */
async function sendDimse(files, port) {
  const begin = performance.now();
  const client = new dimse.Client();
  const failed = [];
  let succeeded = 0;
  for (const file of files) {
    const request = new dimse.requests.CStoreRequest(file);
    request.on('response', (response) => {
      if (response.getStatus() === dimse.constants.Status.Success) succeeded++;
      else failed.push(`${file}: status 0x${response.getStatus().toString(16)}`);
    });
    client.addRequest(request);
  }
  await new Promise((resolve, reject) => {
    client.on('associationRejected', (result) => {
      reject(new Error(`dcmjs-dimse: association rejected ${JSON.stringify(result)}`));
    });
    client.on('networkError', (error) => {
      reject(error instanceof Error ? error : new Error(`dcmjs-dimse: ${String(error)}`));
    });
    client.on('closed', () => {
      resolve();
    });
    client.send('127.0.0.1', port, 'BENCH', 'STORESCP', { associationTimeout: 60_000, pduTimeout: 60_000 });
  });
  if (failed.length > 0 || succeeded !== files.length)
    throw new Error(
      `dcmjs-dimse: ${succeeded}/${files.length} stored; ${failed.slice(0, 5).join('; ') || 'missing responses'}`,
    );
  return performance.now() - begin;
}

/** Empties the receiver's folder (it must stay: storescp writes into it). */
async function clear(dir) {
  for (const name of await readdir(dir)) await rm(join(dir, name), { force: true });
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const files = await series(`send-${INSTANCES}`, INSTANCES);
let bytes = 0;
for (const file of files) bytes += (await stat(file)).size;
log(`${files.length} instances, ${(bytes / 1e6).toFixed(1)} MB, ${ROUNDS} rounds each, alternating`);
const out = await mkdtemp(join(tmpdir(), 'bench-send-'));
const port = await helpers.freePort();
// The receiver and the peer sender get the TCP_NODELAY/QUICKACK shim, so neither side stalls on Nagle.
const shim = await helpers.nodelayShimPath(work);
const shimmed = { ...process.env, LD_PRELOAD: shim };
const peer = await helpers.startDcmtkStorescp({ port, outDir: out, env: shimmed });
const ours = [];
const theirs = [];
const plain = [];
const dimseTimes = [];
try {
  for (let round = 0; round < ROUNDS; round++) {
    theirs.push(await sendDcmtk(files, port, shimmed));
    await clear(out);
    plain.push(await sendDcmtk(files, port, process.env));
    await clear(out);
    ours.push(await sendOurs(files, port));
    await clear(out);
    dimseTimes.push(await sendDimse(files, port));
    await clear(out);
    log(
      `round ${round + 1}: storescu+nodelay ${theirs.at(-1).toFixed(0)} ms, storescu ${plain.at(-1).toFixed(0)} ms, ours ${ours.at(-1).toFixed(0)} ms, dcmjs-dimse ${dimseTimes.at(-1).toFixed(0)} ms`,
    );
  }
} finally {
  await peer.stop();
  await rm(out, { recursive: true, force: true });
}
// A destination that leaves Nagle on: dcmtk storescp without the shim. Its small responses wait for our
// ACKs unless we acknowledge at once (the sender's TCP_QUICKACK); measured against the same storescp with
// the shim, and once with TCP_NODELAY alone (what the sender did before) to show what it changes.
const small = await series(`send-small-${NAGLE_INSTANCES}`, NAGLE_INSTANCES, { rows: 64, columns: 64 });
const nagle = { shimmed: [], plain: [], plainNoQuickAck: [] };
for (const [name, env] of [
  ['shimmed', shimmed],
  ['plain', process.env],
]) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-send-nagle-'));
  const destinationPort = await helpers.freePort();
  const destination = await helpers.startDcmtkStorescp({ port: destinationPort, outDir: dir, env });
  try {
    for (let round = 0; round < ROUNDS; round++) {
      nagle[name].push(await sendOurs(small, destinationPort));
      await clear(dir);
      if (name === 'plain') {
        nagle.plainNoQuickAck.push(await sendOurs(small, destinationPort, () => undefined));
        await clear(dir);
      }
    }
  } finally {
    await destination.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
const nagleRatio = median(nagle.plain) / median(nagle.shimmed);
log(
  `${NAGLE_INSTANCES} small instances, median: to storescp with the shim ${median(nagle.shimmed).toFixed(0)} ms, ` +
    `to plain storescp ${median(nagle.plain).toFixed(0)} ms (${nagleRatio.toFixed(2)}x), ` +
    `to plain storescp with TCP_NODELAY alone ${median(nagle.plainNoQuickAck).toFixed(0)} ms` +
    (runtime.quickAckAvailable() ? '' : ' (TCP_QUICKACK addon not built!)'),
);

const oursMs = median(ours);
const peerMs = median(theirs);
const dimseMs = median(dimseTimes);
log(
  `median: ours ${oursMs.toFixed(0)} ms, storescu+nodelay ${peerMs.toFixed(0)} ms, plain storescu ${median(plain).toFixed(0)} ms, dcmjs-dimse ${dimseMs.toFixed(0)} ms (${(dimseMs / oursMs).toFixed(2)}x ours)`,
);
console.log(
  `RESULT instances=${files.length} ours_ms=${oursMs.toFixed(0)} peer_ms=${peerMs.toFixed(0)} ratio_speed=${(peerMs / oursMs).toFixed(2)} plain_peer_ms=${median(plain).toFixed(0)} ours_mbps=${(bytes / 1e6 / (oursMs / 1000)).toFixed(0)} peer_mbps=${(bytes / 1e6 / (peerMs / 1000)).toFixed(0)} nagle_ratio=${nagleRatio.toFixed(2)} nagle_plain_ms=${median(nagle.plain).toFixed(0)} nagle_shimmed_ms=${median(nagle.shimmed).toFixed(0)} nagle_nodelay_only_ms=${median(nagle.plainNoQuickAck).toFixed(0)} dimse_ms=${dimseMs.toFixed(0)} ratio_vs_dcmjs_dimse=${(dimseMs / oursMs).toFixed(2)}`,
);

// Starting and stopping the two receivers the bench compares: dcmtk's storescp ("peer") and ours.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { freePort, startDcmtkStorescp, startListeningProcess } from '@dicomflow/test-helpers';
import process from 'node:process';

export const AE_TITLE = 'STORESCP';
export const OURS_ENTRY = 'services/storescp/dist/main.js';

/**
 * dcmtk storescp writing every instance to a fresh directory (+B: bytes as received, like our spool).
 * The nodelay shim is preloaded so it does not stall on Nagle either.
 */
export async function startPeer({ work, shim, fork = false }) {
  const port = await freePort();
  const outDir = join(work, `peer-out-${port}`);
  const running = await startDcmtkStorescp({
    port,
    outDir,
    aeTitle: AE_TITLE,
    fork,
    env: { ...process.env, LD_PRELOAD: shim },
  });
  return {
    name: fork ? 'dcmtk storescp --fork' : 'dcmtk storescp',
    pid: running.pid,
    port,
    /**
     * dcmtk has nothing left to do after an association; its files are removed so the next send writes
     * into an empty folder again, as the first did (ours, having published them, removed its own).
     */
    async settled() {
      for (const name of await readdir(outDir))
        await rm(join(outDir, name), { recursive: true, force: true });
    },
    async stop() {
      await running.stop();
      await rm(outDir, { recursive: true, force: true });
    },
  };
}

/**
 * The Node flags our storescp runs with, taken from its `npm start` script so the bench measures the
 * service as it is started (the flags keep its young generation small, which bounds memory).
 */
async function oursNodeFlags(root) {
  const pkg = JSON.parse(await readFile(join(root, 'services/storescp/package.json'), 'utf8'));
  const words = String(pkg.scripts?.start ?? '').split(/\s+/);
  return words.filter((word) => word.startsWith('--'));
}

/** The environment our storescp reads (see DESIGN.md "Configuration"), pointed at throwaway dirs. */
function oursEnvironment({ port, httpPort, spoolDir, confDir, fsync, workers, early, env }) {
  return {
    ...process.env,
    AE_PORT: String(port),
    AE_TITLE,
    HTTP_PORT: String(httpPort),
    SPOOL_DIR: spoolDir,
    CONF_DIR: confDir,
    LOG_LEVEL: 'warn',
    GROUPING: 'association',
    SPOOL_FSYNC: fsync ? 'true' : 'false',
    RECEIVER_WORKERS: String(workers),
    // dcmtk storescp uploads nothing: like for like, the receipt is uploaded after the association (as it
    // always is with the key off); `early: true` measures the default, the tar going up while it runs.
    RECEIPT_EARLY_UPLOAD: early ? 'true' : 'false',
    // The MinIO that bench/lib.mjs ensureS3() started, or the one the S3_* variables name; parts of
    // production's size unless S3_PART_SIZE says otherwise.
    S3_ENDPOINT: process.env.S3_ENDPOINT ?? '127.0.0.1',
    S3_PORT: process.env.S3_PORT ?? '9000',
    S3_ACCESS_KEY: process.env.S3_ACCESS_KEY ?? 'minioadmin',
    S3_SECRET_KEY: process.env.S3_SECRET_KEY ?? 'minioadmin',
    S3_USE_SSL: process.env.S3_USE_SSL ?? 'false',
    S3_PART_SIZE: process.env.S3_PART_SIZE ?? '67108864',
    RABBIT_HOSTNAME: process.env.RABBIT_HOSTNAME ?? '127.0.0.1',
    RABBIT_PORT: process.env.RABBIT_PORT ?? '5672',
    RABBIT_USERNAME: process.env.RABBIT_USERNAME ?? 'guest',
    RABBIT_PASSWORD: process.env.RABBIT_PASSWORD ?? 'guest',
    // An exchange and queues of the bench's own: its receipts must not reach a suite running beside it.
    RABBIT_EXCHANGE: 'bench.ingest',
    RABBIT_QUEUE_PREFIX: 'bench.ingest.',
    ...env,
  };
}

/**
 * Our storescp (`node services/storescp/dist/main.js`), one fresh process per measurement. By default it
 * runs with SPOOL_FSYNC=false, the same durability as dcmtk storescp (which never fsyncs), so the two are
 * compared like for like; `fsync: true` measures our default, durable-on-power-loss setting. Stopping it
 * (SIGTERM) lets it finish the receipt it is uploading, so runs do not overlap. With BENCH_OURS=dcmtk
 * a second dcmtk storescp stands in, to prove the harness before ours exists. `workers` > 1 runs it with
 * RECEIVER_WORKERS worker processes sharing the DICOM port. `env` overrides any of its variables (another
 * grouping, say).
 */
export async function startOurs({
  work,
  root,
  shim,
  fork = false,
  fsync = false,
  workers = 1,
  early = false,
  env = {},
}) {
  if (process.env.BENCH_OURS === 'dcmtk') {
    const peer = await startPeer({ work, shim, fork });
    return { ...peer, name: `${peer.name} (standing in for ours: BENCH_OURS=dcmtk)` };
  }
  const entry = join(root, OURS_ENTRY);
  if (!existsSync(entry)) throw new Error(`${OURS_ENTRY} not found: run \`npm run build\` first`);
  const port = await freePort();
  const httpPort = await freePort();
  const spoolDir = join(work, `ours-spool-${port}`);
  const confDir = join(work, `ours-conf-${port}`);
  await mkdir(spoolDir, { recursive: true });
  await mkdir(confDir, { recursive: true });
  const running = await startListeningProcess(process.execPath, [...(await oursNodeFlags(root)), entry], {
    port,
    cwd: root,
    env: oursEnvironment({ port, httpPort, spoolDir, confDir, fsync, workers, early, env }),
    timeoutMs: 60_000,
    stopGraceMs: 120_000,
  });
  const groupsDir = join(spoolDir, 'groups');
  return {
    name: `ours (services/storescp${fsync ? ', SPOOL_FSYNC=true' : ''}${early ? ', RECEIPT_EARLY_UPLOAD=true' : ''}${workers > 1 ? `, RECEIVER_WORKERS=${workers}` : ''})`,
    pid: running.pid,
    port,
    /** Resolves once every receipt is uploaded and published (its group folder is gone from the spool). */
    async settled(timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      while ((await readdir(groupsDir).catch(() => [])).length > 0) {
        if (Date.now() > deadline) throw new Error(`ours still holds receipts after ${timeoutMs} ms`);
        await sleep(20);
      }
    },
    async stop() {
      await running.stop();
      await rm(spoolDir, { recursive: true, force: true });
      await rm(confDir, { recursive: true, force: true });
    },
  };
}

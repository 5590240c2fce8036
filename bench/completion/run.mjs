// Completion benchmark: time from the last instance's response to `study.received`, with GROUPING=series,
// for a series that announces its instance count (Images in Acquisition) and for the same series without
// it (the group then completes after GROUP_TIMEOUT). Prints what it does and, last, one `RESULT` line.
// Not a test. Build first (`npm run build`).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import console from 'node:console';
import process from 'node:process';
import amqp from 'amqplib';
import { ensureS3, median, positiveInt } from '../lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(root, 'bench', '.work', 'completion');
const INSTANCES = positiveInt('BENCH_INSTANCES', 100);
const ROUNDS = positiveInt('BENCH_ROUNDS', 3);
// Short enough to keep the run short; the case without a count waits it out by design.
const GROUP_TIMEOUT_S = positiveInt('BENCH_GROUP_TIMEOUT', 5);
const EXCHANGE = 'bench.ingest'; // the exchange bench/ingest/receivers.mjs gives our storescp

execFileSync(
  process.execPath,
  [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--build', 'test/helpers'],
  { cwd: root, stdio: 'inherit' },
);
const stopS3 = await ensureS3();
const helpers = await import('@dicomflow/test-helpers');
const { startOurs } = await import('../ingest/receivers.mjs');
const { timedSend } = await import('../ingest/measure.mjs');
const log = (message) => console.log(`[bench] ${message}`);

/** The series, generated once into bench/.work/completion and reused; `counted` carries (0020,1002). */
async function seriesPair() {
  const plain = join(work, 'plain');
  const counted = join(work, 'counted');
  const marker = join(work, '.complete');
  if (!existsSync(marker) || Number(await readFile(marker, 'utf8')) !== INSTANCES) {
    await rm(work, { recursive: true, force: true });
    await helpers.generateCtSeries(plain, INSTANCES, {
      rows: 256,
      columns: 256,
      patientName: 'Bench^Completion',
    });
    await cp(plain, counted, { recursive: true });
    const files = (await readdir(counted)).filter((f) => f.endsWith('.dcm')).map((f) => join(counted, f));
    await helpers.runChecked('dcmodify', ['-nb', '-i', `(0020,1002)=${INSTANCES}`, ...files]);
    await writeFile(marker, String(INSTANCES));
  }
  const list = async (dir) =>
    (await readdir(dir))
      .filter((f) => f.endsWith('.dcm'))
      .sort()
      .map((f) => join(dir, f));
  return { plain: await list(plain), counted: await list(counted) };
}

/** Resolves with performance.now() of the next `study.received` on the bench exchange. */
async function nextReceipt(channel) {
  const { queue } = await channel.assertQueue(`bench.completion.${randomUUID()}`, { exclusive: true });
  await channel.bindQueue(queue, EXCHANGE, 'study.received');
  let resolve;
  const arrived = new Promise((r) => (resolve = r));
  const { consumerTag } = await channel.consume(queue, () => resolve(performance.now()), { noAck: true });
  return {
    arrived,
    close: async () => {
      await channel.cancel(consumerTag);
      await channel.deleteQueue(queue);
    },
  };
}

async function main() {
  const { plain, counted } = await seriesPair();
  const shim = await helpers.nodelayShimPath(join(root, 'bench', '.work'));
  const connection = await amqp.connect({
    hostname: process.env.RABBIT_HOSTNAME ?? '127.0.0.1',
    port: Number(process.env.RABBIT_PORT ?? 5672),
    username: process.env.RABBIT_USERNAME ?? 'guest',
    password: process.env.RABBIT_PASSWORD ?? 'guest',
  });
  const channel = await connection.createChannel();
  await channel.assertExchange(EXCHANGE, 'topic', { durable: true });
  const latencies = { counted: [], plain: [] };
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, files] of [
        ['counted', counted],
        ['plain', plain],
      ]) {
        const receiver = await startOurs({
          work: join(root, 'bench', '.work'),
          root,
          shim,
          env: { GROUPING: 'series', GROUP_TIMEOUT: String(GROUP_TIMEOUT_S) },
        });
        const receipt = await nextReceipt(channel);
        try {
          await timedSend({ port: receiver.port, files, shim });
          const lastAnswered = performance.now();
          const ms = (await receipt.arrived) - lastAnswered;
          latencies[name].push(ms);
          log(
            `round ${round} ${name === 'counted' ? 'with the count' : 'without a count'}: ${ms.toFixed(0)} ms`,
          );
        } finally {
          await receipt.close();
          await receiver.stop();
        }
      }
    }
  } finally {
    await connection.close();
    await stopS3();
  }
  const withCount = median(latencies.counted);
  const without = median(latencies.plain);
  log(
    `last instance answered -> study.received, median of ${ROUNDS}: with the count ${withCount.toFixed(0)} ms, ` +
      `without ${without.toFixed(0)} ms (GROUP_TIMEOUT ${GROUP_TIMEOUT_S} s)`,
  );
  console.log(
    `RESULT with_count_ms=${withCount.toFixed(0)} without_count_ms=${without.toFixed(0)} ` +
      `group_timeout_s=${GROUP_TIMEOUT_S} instances=${INSTANCES} ratio=${(without / withCount).toFixed(1)}`,
  );
}

await main();

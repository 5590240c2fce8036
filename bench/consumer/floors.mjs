// What no consumer can go below, for bench/consumer (see README.md, "The floors"). Imported once the
// packages are built.
import { performance } from 'node:perf_hooks';
import { containerStartSeconds, median, s3PutGetSeconds } from '../lib.mjs';

const fixed = (n) => n.toFixed(3);

/**
 * Measures, with the services' own storage code and the same Docker engine, what a job cannot do without:
 * its input read from S3 before its model starts (GET), its output written after the model ends (PUT; the
 * copy model's output is its input), and the engine starting the container in between. Medians of `rounds`
 * rounds, as bench/e2e does. The GET reads the receipt tar the jobs read, as they find it (MinIO serves an
 * object read again from the page cache; a GET of the tar just written is printed for comparison); the PUT
 * writes a new object, as each job does.
 *
 * @param {object} options
 * @param {import('@dicomflow/storage').Storage} options.storage
 * @param {import('dockerode')} options.docker
 * @param {string} options.image the copy model's image
 * @param {{ bucket: string, tarKey: string, entries: { name: string, path: string, size: number }[] }} options.receipt
 * @param {string} options.bucket where the PUTs go (removed again)
 * @param {number} options.rounds
 * @param {string} options.name prefix of the probe containers' names
 * @param {(message: string) => void} options.log
 * @returns {Promise<{ get: number, put: number, start: number, total: number }>} seconds
 */
export async function measureFloors({ storage, docker, image, receipt, bucket, rounds, name, log }) {
  const {
    puts,
    gets: coldGets,
    bytes,
  } = await s3PutGetSeconds({
    storage,
    bucket,
    entries: receipt.entries,
    rounds,
  });
  const gets = [];
  for (let round = 0; round < rounds; round++) {
    const begin = performance.now();
    for await (const chunk of await storage.getStream(receipt.bucket, receipt.tarKey)) void chunk;
    gets.push((performance.now() - begin) / 1000);
  }
  log(
    `floor: S3 (${(bytes / 1e6).toFixed(1)} MB tar): PUT ${puts.map(fixed).join(' ')} s, ` +
      `GET of the receipt ${gets.map(fixed).join(' ')} s (of the tar just written: ${coldGets.map(fixed).join(' ')} s)`,
  );
  const starts = await containerStartSeconds({ docker, image, name, rounds });
  log(`floor: Docker engine start of the copy model's container: ${starts.map(fixed).join(' ')} s`);
  const result = { put: median(puts), get: median(gets), start: median(starts) };
  return { ...result, total: result.put + result.get + result.start };
}

// Small helpers every benchmark uses.
import console from 'node:console';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import process from 'node:process';

/** The positive integer in environment variable `name`, else `fallback`; throws on anything else. */
export function positiveInt(name, fallback) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

/** The median of `values` (the mean of the two middle ones for an even count). */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Points the S3_* variables at a MinIO of the benchmark's own (built from source by scripts/test.sh or
 * scripts/up.sh, started on a free port with a temporary data folder) unless S3_ENDPOINT names one already.
 * Call it after the build and before reading the environment. Returns what stops it.
 */
export async function ensureS3() {
  if (process.env.S3_ENDPOINT) return async () => {};
  const { startMinio } = await import('@dicomflow/storage/testing');
  const minio = await startMinio();
  Object.assign(process.env, {
    S3_ENDPOINT: '127.0.0.1',
    S3_PORT: String(minio.port),
    S3_ACCESS_KEY: minio.config.accessKey,
    S3_SECRET_KEY: minio.config.secretKey,
    S3_USE_SSL: 'false',
  });
  console.log(`[bench] S3: a MinIO of its own on 127.0.0.1:${minio.port} (S3_ENDPOINT unset)`);
  return () => minio.close();
}

/** Current RSS (MB) of a process, from /proc; 0 when it is gone. */
export function rssMb(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/**
 * Seconds the S3 server takes, with the services' own storage code, to store a tar of `entries` (one PUT)
 * and to serve it back just written (one GET), `rounds` times; each object is removed again. Call it after
 * the build (it imports @dicomflow/dicom).
 *
 * @param {{ storage: import('@dicomflow/storage').Storage, bucket: string,
 *   entries: { name: string, path: string, size: number }[], rounds: number }} options
 * @returns {Promise<{ puts: number[], gets: number[], bytes: number }>}
 */
export async function s3PutGetSeconds({ storage, bucket, entries, rounds }) {
  const { createTarStream, tarSize } = await import('@dicomflow/dicom');
  const bytes = tarSize(entries);
  const puts = [];
  const gets = [];
  for (let round = 0; round < rounds; round++) {
    const key = `floor-${round}.tar`;
    let begin = performance.now();
    await storage.putStream(bucket, key, createTarStream(entries), bytes);
    puts.push((performance.now() - begin) / 1000);
    begin = performance.now();
    for await (const chunk of await storage.getStream(bucket, key)) void chunk;
    gets.push((performance.now() - begin) / 1000);
    await storage.remove(bucket, key);
  }
  return { puts, gets, bytes };
}

/**
 * Seconds the Docker engine takes to start a container of `image` created beforehand (the consumer creates
 * its container while the input downloads: only `start`, the engine and runc setting it up, lies between the
 * input's end and the model's start), `rounds` times; each probe container is removed again.
 *
 * @param {{ docker: import('dockerode'), image: string, name: string, rounds: number }} options
 * @returns {Promise<number[]>}
 */
export async function containerStartSeconds({ docker, image, name, rounds }) {
  const starts = [];
  for (let round = 0; round < rounds; round++) {
    const probe = await docker.createContainer({
      Image: image,
      name: `${name}-${round}`,
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      const begin = performance.now();
      await probe.start();
      starts.push((performance.now() - begin) / 1000);
      await probe.wait();
    } finally {
      await probe.remove({ force: true });
    }
  }
  return starts;
}

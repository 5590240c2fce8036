// Small helpers every benchmark uses.
import console from 'node:console';
import { readFileSync } from 'node:fs';
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

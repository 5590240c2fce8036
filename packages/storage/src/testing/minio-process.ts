import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StorageConfig } from '../storage.js';

/** The repository root (this file is packages/storage/{src,dist}/testing/minio-process.*). */
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const ACCESS_KEY = 'minioadmin';
const SECRET_KEY = 'minioadmin';
const START_TIMEOUT_MS = 60_000;

/**
 * The MinIO binary the scripts build from source (scripts/lib/setup.sh): `MINIO_BINARY`, else the cache
 * folder's build of the version in scripts/minio-version. Throws, saying how to get it, when it is missing.
 */
export function minioBinary(): string {
  const fromEnv = process.env.MINIO_BINARY;
  if (fromEnv) return fromEnv;
  const version = readFileSync(join(REPO_ROOT, 'scripts', 'minio-version'), 'utf8').trim();
  const cache =
    process.env.DICOMFLOW_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'dicomflow');
  const path = join(cache, 'minio', version, 'minio');
  if (!existsSync(path)) {
    throw new Error(
      `no MinIO binary at ${path}: scripts/test.sh or scripts/up.sh builds it (or set MINIO_BINARY)`,
    );
  }
  return path;
}

/** A MinIO server of a test's own, which the test can kill and start again on the same port and data. */
export interface MinioProcess {
  readonly port: number;
  readonly dataDir: string;
  /** How to reach it (part size: production's 64 MiB unless the caller overrides it). */
  readonly config: StorageConfig;
  /** SIGKILL, as a crash would; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again (same port and data); resolves once it answers. */
  restart(): Promise<void>;
  /** Stops it and removes its data folder (when this helper made it). */
  close(): Promise<void>;
}

/** What {@link startMinio} may add to a plain server. */
export interface MinioOptions {
  /**
   * Serve HTTPS only, with this PEM certificate and key (copied to `--certs-dir` as public.crt and
   * private.key); `config` then has `useSSL: true` and no `ca`, which the caller adds.
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

/** Starts MinIO on a free loopback port with a fresh data folder; resolves once it answers. */
export async function startMinio(options: MinioOptions = {}): Promise<MinioProcess> {
  const binary = minioBinary();
  const dataDir = await mkdtemp(join(tmpdir(), 'dicomflow-minio-'));
  const port = await freePort();
  // The certificates live beside the data, not in it (MinIO would take the folder for a bucket).
  const certsDir = options.tls ? `${dataDir}-certs` : undefined;
  if (options.tls && certsDir !== undefined) {
    await mkdir(join(certsDir, 'CAs'), { recursive: true });
    await copyFile(options.tls.certFile, join(certsDir, 'public.crt'));
    await copyFile(options.tls.keyFile, join(certsDir, 'private.key'));
  }
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const proc = spawn(
      binary,
      [
        'server',
        '--quiet',
        '--address',
        `127.0.0.1:${port}`,
        '--console-address',
        `127.0.0.1:${await freePort()}`,
        ...(certsDir === undefined ? [] : ['--certs-dir', certsDir]),
        dataDir,
      ],
      {
        env: {
          ...process.env,
          MINIO_ROOT_USER: ACCESS_KEY,
          MINIO_ROOT_PASSWORD: SECRET_KEY,
          MINIO_BROWSER: 'off',
        },
        stdio: 'ignore',
      },
    );
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await untilLive(port, proc, certsDir !== undefined);
  };

  await launch();
  // A test runner or benchmark that exits without close() must not leave a server behind.
  process.once('exit', () => {
    child?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    if (certsDir !== undefined) rmSync(certsDir, { recursive: true, force: true });
  });
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    port,
    dataDir,
    config: {
      endPoint: '127.0.0.1',
      port,
      useSSL: certsDir !== undefined,
      accessKey: ACCESS_KEY,
      secretKey: SECRET_KEY,
      partSize: 64 * 1024 * 1024,
    },
    kill: () => stop('SIGKILL'),
    restart: async () => {
      await stop('SIGKILL');
      await launch();
    },
    close: async () => {
      await stop('SIGTERM');
      await rm(dataDir, { recursive: true, force: true });
      if (certsDir !== undefined) await rm(certsDir, { recursive: true, force: true });
    },
  };
}

/** MinIO's readiness over HTTPS; the certificate is not checked here (only whether it is up yet). */
function readyOverHttps(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/minio/health/ready', rejectUnauthorized: false },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function untilLive(port: number, proc: ChildProcess, https: boolean): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`MinIO exited while starting (${String(proc.exitCode ?? proc.signalCode)})`);
    if (https) {
      if (await readyOverHttps(port)) return;
    } else {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/minio/health/ready`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
    }
    if (Date.now() > deadline)
      throw new Error(`MinIO did not answer on port ${port} within ${START_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port'));
        else resolve(address.port);
      });
    });
  });
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@dicomflow/config';
import { createLogger } from '@dicomflow/runtime';
import { createStorage, type Storage } from '@dicomflow/storage';
import { removeBucketAndObjects, uniqueBucketName } from '@dicomflow/storage/testing';
import { testEnvironment, testStorageConfig } from '@dicomflow/test-helpers';
import { createService, type StaticStorageOptions, type StaticStorageService } from '../service.js';

/** A static-storage running in this process against the real S3 server, on a bucket of its own. */
export interface RunningStaticStorage {
  readonly service: StaticStorageService;
  readonly url: string;
  readonly bucket: string;
  /** A client of the same S3 server, to look at the bucket directly. */
  readonly storage: Storage;
  /** Every log line the service wrote (info and above), parsed. */
  readonly logs: readonly Record<string, unknown>[];
  /** Stops the service (the bucket stays). */
  stop(): Promise<void>;
}

/** Starts static-storage on `directory`; `env` overrides configuration (e.g. STATIC_UPLOAD_TOKEN, S3_BUCKET_STATIC). */
export async function startStaticStorage(
  directory: string,
  env: Record<string, string> = {},
  options: StaticStorageOptions = {},
): Promise<RunningStaticStorage> {
  const confDir = await mkdtemp(join(tmpdir(), 'static-storage-conf-'));
  const config = loadConfig('static-storage', {
    confDir,
    env: {
      ...testEnvironment(),
      S3_BUCKET_STATIC: uniqueBucketName('static'),
      STATIC_DIRECTORY: directory,
      HTTP_PORT: '0',
      HTTP_HOST: '127.0.0.1',
      ...env,
    },
  });
  const logs: Record<string, unknown>[] = [];
  const echo = process.env.TEST_LOG_LEVEL !== undefined;
  const logger = createLogger({
    service: 'static-storage-test',
    level: 'info',
    destination: {
      write(line: string) {
        logs.push(JSON.parse(line) as Record<string, unknown>);
        if (echo) process.stderr.write(line);
      },
    },
  });
  const service = createService(config, logger, { syncDebounceMs: 100, settleMs: 0, ...options });
  try {
    await service.start();
  } catch (err) {
    await service.close();
    await rm(confDir, { recursive: true, force: true });
    throw err;
  }
  return {
    service,
    url: `http://127.0.0.1:${service.httpPort()}`,
    bucket: config.S3_BUCKET_STATIC,
    storage: createStorage(testStorageConfig()),
    logs,
    async stop() {
      await service.close();
      await rm(confDir, { recursive: true, force: true });
    },
  };
}

/** Removes a test bucket and everything in it. */
export function dropBucket(bucket: string): Promise<void> {
  return removeBucketAndObjects(createStorage(testStorageConfig()), bucket);
}

/** How many tars the service wrote to S3 from the folder, per its log. */
export function folderUploads(logs: readonly Record<string, unknown>[], name?: string): number {
  return logs.filter(
    (line) =>
      line.msg === 'static content uploaded from the folder' && (name === undefined || line.name === name),
  ).length;
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@dicomflow/config';
import { createLogger } from '@dicomflow/runtime';
import { createService, type FingerprinterOptions, type FingerprinterService } from '../service.js';
import type { FlowReport } from '../flows/flow-snapshot.js';
import { testEnvironment, waitFor } from '@dicomflow/test-helpers';

/** What `/readyz` answers. */
export interface ReadyzBody {
  readonly status: string;
  readonly checks: Record<string, { ok: boolean; error?: string }>;
  readonly details: FlowReport;
}

/** GETs `/readyz` of the service on `port`. */
export async function readyz(port: number): Promise<{ statusCode: number; body: ReadyzBody }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { statusCode: response.status, body: (await response.json()) as ReadyzBody };
}

/** Waits until `/readyz` on `port` satisfies `predicate` (bounded). */
export async function waitForReadyz(
  port: number,
  predicate: (body: ReadyzBody) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<ReadyzBody> {
  let last: ReadyzBody | undefined;
  await waitFor(
    async () => {
      last = await readyz(port)
        .then((answer) => answer.body)
        .catch(() => undefined);
      return last !== undefined && predicate(last);
    },
    `${what} (last /readyz: ${JSON.stringify(last)})`,
    timeoutMs,
  );
  if (!last) throw new Error('unreachable');
  return last;
}

/** A fingerprinter running in this process against the real RabbitMQ and S3. */
export interface RunningFingerprinter {
  readonly service: FingerprinterService;
  readonly port: number;
  /** Every log line the service wrote (info and above), parsed. */
  readonly logs: readonly Record<string, unknown>[];
  close(): Promise<void>;
}

/** Starts a fingerprinter on `flowDirectory` and waits until it is ready (consuming). */
export async function startFingerprinter(
  flowDirectory: string,
  options: FingerprinterOptions,
  env: Record<string, string> = {},
): Promise<RunningFingerprinter> {
  const confDir = await mkdtemp(join(tmpdir(), 'fingerprinter-conf-'));
  const config = loadConfig('fingerprinter', {
    confDir,
    env: {
      ...testEnvironment(),
      FLOW_DIRECTORY: flowDirectory,
      HTTP_PORT: '0',
      HTTP_HOST: '127.0.0.1',
      ...env,
    },
  });
  const logs: Record<string, unknown>[] = [];
  const echo = process.env.TEST_LOG_LEVEL !== undefined;
  const logger = createLogger({
    service: 'fingerprinter-test',
    level: 'info',
    destination: {
      write(line: string) {
        logs.push(JSON.parse(line) as Record<string, unknown>);
        if (echo) process.stderr.write(line);
      },
    },
  });
  const service = createService(config, logger, options);
  try {
    await service.start();
    await waitForReadyz(
      service.httpPort(),
      (body) => body.status === 'ready',
      'the fingerprinter to be ready',
    );
  } catch (err) {
    await service.close();
    await rm(confDir, { recursive: true, force: true });
    throw err;
  }
  const port = service.httpPort();
  return {
    service,
    port,
    logs,
    async close() {
      await service.close();
      await rm(confDir, { recursive: true, force: true });
    },
  };
}

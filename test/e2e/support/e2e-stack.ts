// The whole suite for one end-to-end test file: the seven services started from their builds through
// `npm run stack`'s entry points (scripts/stack-lib.mjs), isolated from everything else on the machine by an
// exchange, queue prefix, buckets, database schemas and folders of its own, all removed again by close().
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, testEnvironment, waitFor } from '@dicomflow/test-helpers';
import { removeIsolatedStack } from '../../../scripts/stack-cleanup.mjs';
import { STACK_SERVICES, startStack } from '../../../scripts/stack-lib.mjs';

/**
 * Time for one end-to-end test: it starts services, sends studies and waits for runs, which on a loaded
 * 2-core machine takes well over vitest's default minute; each wait inside has its own, shorter bound.
 */
export const E2E_TEST_TIMEOUT_MS = 300_000;

/** The receiver's AE title in every end-to-end test. */
export const AE_TITLE = 'DICOMFLOW';

type StackHandle = Awaited<ReturnType<typeof startStack>>;

/** A run as `GET /runs` and `GET /runs/:id` of the flow-tracker show it (the fields the tests read). */
export interface TrackedRun {
  readonly id: string;
  readonly name: string;
  readonly flowFile: string;
  readonly status: number;
  readonly statusName: string;
  readonly priority: number | null;
  readonly received: string | null;
  readonly dispatched: string | null;
  readonly finished: string | null;
  readonly sent: string | null;
  readonly failure: { reason: string; message: string | null } | null;
  readonly destinations: string[];
  readonly receiptId: string;
}

export interface TrackedStep {
  readonly step: number;
  readonly state: string;
  readonly image: string;
  readonly queue: string;
  readonly gpu: string;
  readonly start: string | null;
  readonly end: string | null;
  readonly runningMs: number | null;
  readonly exitCode: number | null;
  readonly log: string | null;
  readonly failure: { reason: string; message: string | null } | null;
}

export interface TrackedRunDetail extends TrackedRun {
  readonly waitingFor: string | null;
  readonly timings: Record<string, number | null>;
  readonly steps: TrackedStep[];
}

export interface E2eStackOptions {
  /** CPU slots of the consumer (default 1). */
  readonly cpus?: number;
  /** GPU ids of the consumer (default none). */
  readonly gpus?: string;
  /** More environment for every service. */
  readonly env?: Readonly<Record<string, string>>;
  /** Start the consumer with the others (default true); false: jobs wait until addConsumer(). */
  readonly consumer?: boolean;
  /**
   * Each service in a process handle of its own on a fixed port, so that one can be killed and started
   * again ({@link E2eStack.kill}, {@link E2eStack.restart}); the fault tests use it.
   */
  readonly separate?: boolean;
}

/** A service process that ended without being asked to (a kill -9 by a test is not one). */
export interface UnexpectedExit {
  readonly service: string;
  readonly code: number | null;
  readonly signal: string | null;
}

/** A running suite and what a test needs to drive and observe it. */
export interface E2eStack {
  readonly id: string;
  /** The environment every service got. */
  readonly env: Readonly<Record<string, string>>;
  /** DICOM port of the receiver (AE title {@link AE_TITLE}) on 127.0.0.1. */
  readonly aePort: number;
  readonly trackerUrl: string;
  /** Headers of a request to the flow-tracker's API (its bearer token). */
  readonly trackerHeaders: Readonly<Record<string, string>>;
  /** GET of a flow-tracker API path (`/runs/...`) with its token. */
  trackerGet(path: string): Promise<Response>;
  /** HTTP base URL of each service of the main stack. */
  readonly urls: Readonly<Record<string, string>>;
  readonly flowsDir: string;
  /**
   * Writes a flow file (JSON is YAML) into the watched flow folder and waits until the fingerprinter has
   * loaded it.
   */
  writeFlow(file: string, flow: Readonly<Record<string, unknown>>): Promise<void>;
  /** The tracker's runs of a flow (by name or file), newest first. */
  runs(flow: string): Promise<TrackedRun[]>;
  run(id: string): Promise<TrackedRunDetail>;
  /** Waits until the tracker shows `count` runs of `flow` that satisfy `done`; returns them. */
  waitForRuns(
    flow: string,
    count: number,
    done: (run: TrackedRun) => boolean,
    timeoutMs?: number,
  ): Promise<TrackedRun[]>;
  /** Starts one more consumer process with its own slots (e.g. a GPU consumer); stopped by close(). */
  addConsumer(env: Readonly<Record<string, string>>): Promise<void>;
  /** Sends SIGKILL to one service of the main stack and waits until it is gone (`separate` stacks only). */
  kill(service: string): Promise<void>;
  /** Starts a killed service again on its port, as a supervisor would, and waits for its /readyz. */
  restart(service: string): Promise<void>;
  /** Processes that exited unasked so far. */
  readonly exits: readonly UnexpectedExit[];
  /** Process id of a service of the main stack now (e.g. to read its peak memory from /proc). */
  pid(service: string): number | undefined;
  /** The services' output so far (for failure messages). */
  logs(): string;
  /** Calls `listener` with every output line from now on; returns a function that stops it. */
  onLine(listener: (service: string, line: string) => void): () => void;
  close(): Promise<void>;
}

/** Terminal run states. */
export const isSent = (run: TrackedRun): boolean => run.status === 4;
export const isFailed = (run: TrackedRun): boolean => run.status === 400;
export const isDone = (run: TrackedRun): boolean => isSent(run) || isFailed(run);

/** Starts the suite for one test file. */
export async function startE2eStack(options: E2eStackOptions = {}): Promise<E2eStack> {
  const id = randomBytes(4).toString('hex');
  const work = await mkdtemp(join(tmpdir(), `dicomflow-e2e-${id}-`));
  const flowsDir = join(work, 'flows');
  await mkdir(flowsDir);
  await mkdir(join(work, 'static'));
  const aePort = await freePort();
  const schemas = {
    scheduler: `e2e_${id}_scheduler`,
    tracker: `e2e_${id}_tracker`,
    sender: `e2e_${id}_sender`,
  };
  const buckets = {
    incoming: `e2e-${id}-incoming`,
    runs: `e2e-${id}-runs`,
    static: `e2e-${id}-static`,
  };
  const env: Record<string, string> = {
    ...testEnvironment(),
    RABBIT_EXCHANGE: `test.e2e-${id}`,
    RABBIT_QUEUE_PREFIX: `test.e2e-${id}.`,
    S3_BUCKET_INCOMING: buckets.incoming,
    S3_BUCKET_RUNS: buckets.runs,
    S3_BUCKET_STATIC: buckets.static,
    SCHEDULER_DB_SCHEMA: schemas.scheduler,
    TRACKER_DB_SCHEMA: schemas.tracker,
    SENDER_DB_SCHEMA: schemas.sender,
    AE_TITLE,
    AE_PORT: String(aePort),
    AE_HOSTNAME: '127.0.0.1',
    HTTP_HOST: '127.0.0.1',
    FLOW_DIRECTORY: flowsDir,
    STATIC_DIRECTORY: join(work, 'static'),
    SPOOL_DIR: join(work, 'spool'),
    SENDER_SPOOL_DIR: join(work, 'sender'),
    // Job folders bind-mounted into the model containers (the mode compose.yaml uses).
    CONSUMER_WORK_DIR: join(work, 'consumer-work'),
    CPUS: String(options.cpus ?? 1),
    GPUS: options.gpus ?? '',
    CONSUMER_ID: `e2e-${id}-main`,
    LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'info',
    TRACKER_API_TOKEN: `e2e-${id}-${randomBytes(12).toString('hex')}`,
    ...options.env,
  };
  const output: string[] = [];
  const listeners = new Set<(service: string, line: string) => void>();
  const onLine = (service: string, line: string): void => {
    output.push(`[${service}] ${line}`);
    if (output.length > 5000) output.splice(0, output.length - 5000);
    for (const listener of listeners) listener(service, line);
  };
  const exits: UnexpectedExit[] = [];
  const stacks: StackHandle[] = [];
  // Every service on a free port; a separate stack fixes them first so a restarted service keeps its own.
  const allPorts: Record<string, number> = Object.fromEntries(STACK_SERVICES.map((name) => [name, 0]));
  if (options.separate) for (const name of STACK_SERVICES) allPorts[name] = await freePort();
  const start = (
    services: readonly string[],
    extraEnv: Readonly<Record<string, string>>,
    dataDir: string,
    ensureBuckets = true,
  ) =>
    startStack({
      env: { ...process.env, ...env, ...extraEnv },
      services,
      httpPorts: allPorts,
      dataDir,
      onLine,
      onExit: (service: string, code: number | null, signal: string | null) => {
        exits.push({ service, code, signal });
      },
      waitFor: 'readyz',
      readyTimeoutMs: 90_000,
      ensureBuckets,
    });
  /** The handle of each service of the main stack (separate stacks: one handle per service). */
  const handles = new Map<string, StackHandle>();

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const stack of stacks.reverse()) await stack.stop().catch(() => undefined);
    await removeIsolatedStack(env).catch((err: unknown) => {
      console.warn('e2e clean-up failed', err);
    });
    await rm(work, { recursive: true, force: true });
  };

  const mainData = join(work, 'stack');
  try {
    const services = STACK_SERVICES.filter((name) => name !== 'consumer' || options.consumer !== false);
    if (options.separate) {
      for (const name of services) {
        const handle = await start([name], {}, mainData, handles.size === 0);
        stacks.push(handle);
        handles.set(name, handle);
      }
    } else {
      const handle = await start(services, {}, mainData);
      stacks.push(handle);
      for (const name of services) handles.set(name, handle);
    }
  } catch (err) {
    const tail = output.slice(-80).join('\n');
    await close();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- service output ---\n${tail}`);
  }
  const urls = Object.fromEntries(
    [...handles].map(([name, handle]) => [name, handle.urls[name] ?? '']),
  ) as Record<string, string>;
  const trackerUrl = urls['flow-tracker'] ?? '';
  const fingerprinterUrl = urls.fingerprinter ?? '';
  const handleOf = (service: string): StackHandle => {
    const handle = handles.get(service);
    if (!handle || !options.separate) throw new Error(`${service} is not a separate process of this stack`);
    return handle;
  };

  const trackerHeaders = { authorization: `Bearer ${env.TRACKER_API_TOKEN ?? ''}` };
  const trackerGet = (path: string): Promise<Response> =>
    fetch(`${trackerUrl}${path}`, { headers: trackerHeaders });
  const getJson = async <T>(url: string): Promise<T> => {
    const response = await fetch(url, { headers: trackerHeaders });
    if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  };
  const runs = async (flow: string): Promise<TrackedRun[]> =>
    (await getJson<{ runs: TrackedRun[] }>(`${trackerUrl}/runs?flow=${encodeURIComponent(flow)}&limit=500`))
      .runs;

  return {
    id,
    trackerHeaders,
    trackerGet,
    env,
    aePort,
    trackerUrl,
    urls,
    flowsDir,
    async writeFlow(file, flow) {
      await writeFile(join(flowsDir, file), `${JSON.stringify(flow, null, 2)}\n`);
      await waitFor(async () => {
        const body = await fetch(`${fingerprinterUrl}/readyz`).then(
          (r) => r.json() as Promise<{ details?: { flows?: { file: string }[] } }>,
        );
        return (body.details?.flows ?? []).some((f) => f.file === file);
      }, `the fingerprinter to load ${file}`);
    },
    runs,
    run: (runId) => getJson<TrackedRunDetail>(`${trackerUrl}/runs/${runId}`),
    async waitForRuns(flow, count, done, timeoutMs = 120_000) {
      let last: TrackedRun[] = [];
      try {
        await waitFor(
          async () => {
            last = await runs(flow);
            return last.filter(done).length >= count;
          },
          `${count} finished runs of ${flow}`,
          timeoutMs,
        );
      } catch (err) {
        const seen = last.map((r) => `${r.id} ${r.statusName} ${JSON.stringify(r.failure)}`).join('\n');
        throw new Error(
          `${(err as Error).message}; runs seen:\n${seen}\n--- service output ---\n${output.slice(-60).join('\n')}`,
        );
      }
      return last.filter(done);
    },
    async addConsumer(extraEnv) {
      const n = stacks.length;
      stacks.push(
        await start(['consumer'], { CONSUMER_ID: `e2e-${id}-${n}`, ...extraEnv }, join(work, `stack-${n}`)),
      );
    },
    async kill(service) {
      const handle = handleOf(service);
      const pid = handle.pids[service];
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
      await handle.stop();
    },
    async restart(service) {
      const old = handleOf(service);
      const handle = await start([service], {}, mainData, false);
      stacks[stacks.indexOf(old)] = handle;
      handles.set(service, handle);
    },
    exits,
    pid: (service) => handles.get(service)?.pids[service],
    logs: () => output.join('\n'),
    onLine(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close,
  };
}

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

// The child runs plain node, so it imports the built package (npm run build / tsc --build first).
const builtRuntime = join(dirname(fileURLToPath(import.meta.url)), '../dist/index.js');

let dir: string;

beforeAll(() => {
  if (!existsSync(builtRuntime))
    throw new Error(`build @dicomflow/runtime first: ${builtRuntime} is missing`);
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dicomflow-run-service-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A child process running a service whose behaviour is chosen by `mode`; close() writes `marker`. */
function writeChildScript(): string {
  const script = join(dir, 'child.mjs');
  writeFileSync(
    script,
    `
import { writeFileSync } from 'node:fs';
import { createLogger, runService } from ${JSON.stringify(pathToFileURL(builtRuntime).href)};

const [mode, marker] = process.argv.slice(2);
const logger = createLogger({ service: 'child' });
let keepAlive;
await runService({
  name: 'child',
  logger,
  graceMs: mode === 'hang-on-close' ? 200 : 60_000,
  service: {
    async start() {
      if (mode === 'fail-start') throw new Error('cannot bind');
      keepAlive = setInterval(() => undefined, 60_000);
      if (mode === 'crash') setImmediate(() => { throw new Error('bug'); });
    },
    async close() {
      if (mode.startsWith('hang')) return new Promise(() => undefined);
      if (mode === 'throw-on-close') throw new Error('broker gone');
      clearInterval(keepAlive);
      await new Promise((resolve) => setTimeout(resolve, 20));
      writeFileSync(marker, 'drained');
    },
  },
});
`,
  );
  return script;
}

interface ChildRun {
  exitCode: number | null;
  logs: Record<string, unknown>[];
}

/** Runs the child, sending a signal when it logs a given message; resolves on exit. */
function runChild(mode: string, signalOn: Record<string, NodeJS.Signals> = {}): Promise<ChildRun> {
  const child = spawn(process.execPath, [writeChildScript(), mode, join(dir, 'marker')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const entry = JSON.parse(line) as Record<string, unknown>;
    logs.push(entry);
    const signal = typeof entry.msg === 'string' ? signalOn[entry.msg] : undefined;
    if (signal) child.kill(signal);
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exitCode) => {
      resolve({ exitCode, logs });
    });
  });
}

const marker = (): string | undefined =>
  existsSync(join(dir, 'marker')) ? readFileSync(join(dir, 'marker'), 'utf8') : undefined;

describe('runService', () => {
  it('on SIGTERM drains through close() and exits 0', async () => {
    const run = await runChild('normal', { 'service started': 'SIGTERM' });
    expect(run.exitCode).toBe(0);
    expect(marker()).toBe('drained');
    expect(run.logs.map((l) => l.msg)).toEqual(['service started', 'closing', 'closed']);
    expect(run.logs[1]).toMatchObject({ reason: 'SIGTERM', service: 'child' });
  });

  it('on SIGINT also drains and exits 0', async () => {
    const run = await runChild('normal', { 'service started': 'SIGINT' });
    expect(run.exitCode).toBe(0);
    expect(marker()).toBe('drained');
  });

  it('logs a start failure and exits 1', async () => {
    const run = await runChild('fail-start');
    expect(run.exitCode).toBe(1);
    expect(run.logs).toEqual([
      expect.objectContaining({
        level: 'fatal',
        msg: 'start failed',
        err: expect.objectContaining({ message: 'cannot bind' }) as unknown,
      }),
    ]);
    expect(marker()).toBeUndefined();
  });

  it('on an uncaught exception logs it, closes and exits 1', async () => {
    const run = await runChild('crash');
    expect(run.exitCode).toBe(1);
    expect(marker()).toBe('drained');
    expect(run.logs).toContainEqual(
      expect.objectContaining({
        msg: 'uncaught error, closing',
        err: expect.objectContaining({ message: 'bug' }) as unknown,
      }),
    );
  });

  it('exits 1 when close() outlasts the grace period', async () => {
    const run = await runChild('hang-on-close', { 'service started': 'SIGTERM' });
    expect(run.exitCode).toBe(1);
    expect(run.logs).toContainEqual(expect.objectContaining({ msg: 'close took too long, exiting' }));
  });

  it('exits 1 on a second signal while closing', async () => {
    const run = await runChild('hang-forever', { 'service started': 'SIGTERM', closing: 'SIGTERM' });
    expect(run.exitCode).toBe(1);
    expect(run.logs).toContainEqual(
      expect.objectContaining({ msg: 'second signal while closing, exiting now', signal: 'SIGTERM' }),
    );
  });

  it('exits 1 when close() fails, logging why', async () => {
    const run = await runChild('throw-on-close', { 'service started': 'SIGTERM' });
    expect(run.exitCode).toBe(1);
    expect(run.logs).toContainEqual(
      expect.objectContaining({
        msg: 'close failed',
        err: expect.objectContaining({ message: 'broker gone' }) as unknown,
      }),
    );
  });
});

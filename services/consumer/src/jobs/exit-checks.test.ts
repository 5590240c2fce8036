import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type Docker from 'dockerode';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, errorKind } from '@dicomflow/runtime';
import type { Job } from '@dicomflow/messages';
import type { WaitResult } from '../docker/containers.js';
import { checkExit, type ExitCheckDeps } from './exit-checks.js';
import { JobFailure } from './job-failure.js';

/** A log as the Engine API frames a non-TTY container's output (stream 1, 4-byte length). */
function framed(text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = 1;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** An engine answer the test gives when it wants to. */
function later<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const job = { runId: 'run', step: 0, model: { timeout: 60 } } as Job;

describe('checkExit', () => {
  let dir: string;
  let calls: string[];
  let inspected: ReturnType<typeof later<unknown>>;
  let container: Docker.Container;
  let deps: ExitCheckDeps;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'consumer-exit-checks-'));
    calls = [];
    inspected = later();
    container = {
      inspect: () => {
        calls.push('inspect');
        return inspected.promise;
      },
      logs: () => {
        calls.push('logs');
        return Promise.resolve(framed('done\n'));
      },
    } as unknown as Docker.Container;
    deps = {
      docker: {} as unknown as Docker,
      maxOutputBytes: 1_000_000,
      maxOutputEntries: 100,
      logger: createLogger({ service: 'test', level: 'silent' }),
    };
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const ended = (result: WaitResult) => ({
    container,
    name: 'dicomflow-run-0',
    job,
    result,
    overflow: undefined,
    outputDir: dir,
  });

  it('asks for the log while the engine says whether the container is there, and walks the output', async () => {
    await writeFile(join(dir, 'result.txt'), 'ok');
    const checking = checkExit(deps, ended({ kind: 'exited', exitCode: 0 }));
    await nextTurn();
    // Both questions are out before the engine answered the first (they were asked one after the other).
    expect([...calls].sort()).toEqual(['inspect', 'logs']);
    inspected.resolve({ State: {} });
    const exit = await checking;
    expect(exit.logExcerpt).toBe('done\n');
    expect((await exit.output)?.entries.map((entry) => entry.name)).toEqual(['result.txt']);
  });

  it("is a transient error when another attempt removed the container, whatever its output's walk found", async () => {
    await symlink('/etc/passwd', join(dir, 'link'));
    const checking = checkExit(deps, ended({ kind: 'exited', exitCode: 0 }));
    inspected.reject(Object.assign(new Error('no such container'), { statusCode: 404 }));
    const err: unknown = await checking.catch((e: unknown) => e);
    expect(errorKind(err)).toBe('transient');
    expect((err as Error).message).toBe(
      'container dicomflow-run-0 was removed by another attempt of this job',
    );
  });

  it('hands on a refused output as the rejection of its walk (the caller adds the exit facts)', async () => {
    await symlink('/etc/passwd', join(dir, 'link'));
    inspected.resolve({ State: {} });
    const exit = await checkExit(deps, ended({ kind: 'exited', exitCode: 0 }));
    await expect(exit.output).rejects.toMatchObject({
      reason: 'output',
      message: 'output entry "link" is a symlink, not a regular file or folder',
    });
  });

  it('fails a non-zero exit with reason exit-code and the end of the log', async () => {
    inspected.resolve({ State: { OOMKilled: false }, HostConfig: {} });
    const err: unknown = await checkExit(deps, ended({ kind: 'exited', exitCode: 3 })).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JobFailure);
    expect(err).toMatchObject({ reason: 'exit-code', facts: { exitCode: 3, logExcerpt: 'done\n' } });
  });

  it('fails a model stopped at its timeout with reason timeout, without asking whether it is there', async () => {
    const err: unknown = await checkExit(deps, ended({ kind: 'timeout' })).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'timeout', facts: { logExcerpt: 'done\n' } });
    expect(calls).toEqual(['logs']);
  });
});

import type Docker from 'dockerode';
import { TransientError, type Logger } from '@dicomflow/runtime';
import type { Job } from '@dicomflow/messages';
import {
  formatBytes,
  oomKilledLimit,
  readLogTail,
  stillExists,
  type WaitResult,
} from '../docker/containers.js';
import { dockerMessage } from '../docker/docker-errors.js';
import { checkEngineStayedUp, type EngineWatchTiming } from '../docker/engine-watch.js';
import { scanOutputFolder, type ScannedOutput } from '../staging/output-folder.js';
import { JobFailure } from './job-failure.js';

/** Lines of the container log kept in `logExcerpt`, and its size cap in characters. */
export const LOG_TAIL_LINES = 200;
export const LOG_EXCERPT_MAX_CHARS = 16_384;

/** What looking at an ended container needs. */
export interface ExitCheckDeps {
  readonly docker: Docker;
  readonly maxOutputBytes: number;
  readonly maxOutputEntries: number;
  readonly engineWatch?: EngineWatchTiming | undefined;
  readonly logger: Logger;
}

/** A model's container once it ended (or was stopped), and what its run showed. */
export interface EndedContainer {
  readonly container: Docker.Container;
  /** Its deterministic name. */
  readonly name: string;
  readonly job: Job;
  readonly result: WaitResult;
  /** The output bound the running model crossed (then it was killed), if it did. */
  readonly overflow: JobFailure | undefined;
  /** The output folder on this consumer's disk (work-folder mode); undefined in the archive mode. */
  readonly outputDir: string | undefined;
}

/** What a model that ended well left: the end of its log and, in work-folder mode, its walked output. */
export interface CleanExit {
  readonly logExcerpt: string;
  /**
   * The output folder's walk ({@link scanOutputFolder}), settled; rejected with the reason the output is
   * refused. Undefined in the archive mode (the output is read from the container).
   */
  readonly output: Promise<ScannedOutput> | undefined;
}

/**
 * Looks at a model's ended container and resolves when it ended well (exit code 0, within its bounds and
 * its timeout). The engine's answers (is the container still there, the end of its log) and, after exit
 * code 0 in work-folder mode, the walk of the output folder on the local disk are asked for at once: one
 * after the other they were three waits between the exit and the upload. They are judged in the order they
 * were asked in before: the container removed by another attempt of the job, or the engine going down
 * (exit codes 137/143), reject with a {@link TransientError}; then the output bound crossed while the model
 * ran, the timeout, out of memory and any other exit code reject with a {@link JobFailure} that carries the
 * log's end.
 */
export async function checkExit(deps: ExitCheckDeps, ended: EndedContainer): Promise<CleanExit> {
  const { logger } = deps;
  const { container, job, result, overflow, outputDir } = ended;
  const clean = result.kind === 'exited' && result.exitCode === 0 && overflow === undefined;
  const output =
    clean && outputDir !== undefined
      ? scanOutputFolder(outputDir, deps.maxOutputBytes, deps.maxOutputEntries)
      : undefined;
  // Settled forms: a check judged first must not leave the others' rejections unhandled.
  const walked = output?.then(
    () => undefined,
    () => undefined,
  );
  const logs = readLogTail(container, LOG_TAIL_LINES, LOG_EXCERPT_MAX_CHARS).then(
    (text) => ({ text, err: undefined }),
    (err: unknown) => ({ text: '', err }),
  );
  try {
    if (result.kind === 'exited' && !(await stillExists(container))) {
      // Another attempt of this job (its message was redelivered elsewhere) removed it: that attempt owns it.
      throw new TransientError(`container ${ended.name} was removed by another attempt of this job`);
    }
    if (result.kind === 'exited')
      await checkEngineStayedUp(deps.docker, container, result.exitCode, deps.engineWatch);
  } catch (err) {
    // Nothing may still read the job folder once the caller removes it.
    await Promise.all([logs, walked]);
    throw err;
  }
  const log = await logs;
  if (log.err !== undefined) logger.warn({ err: dockerMessage(log.err) }, 'cannot read the container log');
  const logExcerpt = log.text;

  if (overflow) {
    throw new JobFailure('output', `${overflow.message}; the model was stopped while it ran`, {
      ...(result.kind === 'exited' ? { exitCode: result.exitCode } : {}),
      logExcerpt,
    });
  }
  if (result.kind === 'timeout') {
    throw new JobFailure(
      'timeout',
      `the model ran longer than its timeout of ${job.model.timeout} s and was stopped`,
      { logExcerpt },
    );
  }
  if (result.exitCode !== 0) {
    const memoryLimit = await oomKilledLimit(container);
    if (memoryLimit !== undefined) {
      throw new JobFailure(
        'out-of-memory',
        `the model used more memory than its limit${memoryLimit > 0 ? ` of ${formatBytes(memoryLimit)}` : ''} and was killed (exit code ${result.exitCode}); raise docker_kwargs.mem_limit within CONSUMER_MAX_MEMORY_LIMIT`,
        { exitCode: result.exitCode, logExcerpt },
      );
    }
    // The log's lines are not quoted here: a model may print patient data, and this message travels on
    // the bus. The log is stored beside the output and kept by the tracker.
    throw new JobFailure(
      'exit-code',
      `the model exited with code ${result.exitCode}${logExcerpt ? "; see its log in the run's steps" : ''}`,
      { exitCode: result.exitCode, logExcerpt },
    );
  }
  await walked;
  return { logExcerpt, output };
}

import type Docker from 'dockerode';
import { errorKind, GoneError, TransientError, type Logger } from '@dicomflow/runtime';
import type { Job, JobFailed, JobFinished, JobStarted } from '@dicomflow/messages';
import type { Storage } from '@dicomflow/storage';
import {
  buildCreateOptions,
  checkDockerKwargs,
  containerDir,
  containerName,
  type ContainerLimits,
  type Slot,
} from '../docker/create-options.js';
import { removeContainer, waitForExit } from '../docker/containers.js';
import {
  asTransientDockerError,
  dockerMessage,
  dockerStatus,
  isDeviceRequestRefusal,
} from '../docker/docker-errors.js';
import type { EngineWatchTiming } from '../docker/engine-watch.js';
import { ensureImage, runsAsRoot, type ImageFacts } from '../docker/images.js';
import { stageInputFolder } from '../staging/input-folder.js';
import { stageInput, type StagedInput } from '../staging/input-tar.js';
import { storeOutputFolder, type ScannedOutput } from '../staging/output-folder.js';
import { collectOutput, type OutputDeps } from '../staging/output-tar.js';
import type { StaticVolumes } from '../staging/static-volumes.js';
import type { JobFolder, WorkFolders } from '../staging/work-folders.js';
import { checkExit } from './exit-checks.js';
import { JobFailure } from './job-failure.js';
import { OUTPUT_CHECK_INTERVAL_MS, watchOutput } from './output-watch.js';
import { storeStepLog } from './step-log.js';

const MESSAGE_MAX_CHARS = 4000;

/** What running a job needs. */
export interface JobDeps {
  readonly docker: Docker;
  readonly storage: Pick<Storage, 'getStream' | 'getBuffer' | 'putStream' | 'putBuffer'>;
  readonly staticVolumes: StaticVolumes;
  readonly consumerId: string;
  /** Shown as `worker` in the job messages (host and consumer id). */
  readonly worker: string;
  readonly maxOutputBytes: number;
  /** Most files and folders in a model's output (MAX_OUTPUT_ENTRIES). */
  readonly maxOutputEntries: number;
  /** How often a running model's writes are measured (default {@link OUTPUT_CHECK_INTERVAL_MS}). */
  readonly outputCheckMs?: number | undefined;
  /** Memory, process and user bounds of model containers (CONSUMER_* keys). */
  readonly limits: ContainerLimits;
  /**
   * The work folder shared with the Docker engine (CONSUMER_WORK_DIR): input and output go through a job
   * folder bind-mounted into the container. Undefined: through the Engine API's archive calls.
   */
  readonly workFolders?: WorkFolders | undefined;
  /** Containers this process runs right now, by name (a second delivery of the same job must wait). */
  readonly running: Set<string>;
  /** Publishes `job.started` (confirmed). */
  readonly publishStarted: (body: JobStarted) => Promise<void>;
  /** Aborted when the consumer stops: a running container is killed and the job retried later. */
  readonly signal: AbortSignal;
  /**
   * When given, the removal of the container and the job folder is handed to it instead of being awaited,
   * so the caller can publish the outcome first (the removal took ~0.13 s between a finished upload and
   * job.finished) and run it afterwards. The function handed over never rejects.
   */
  readonly deferCleanup?: ((cleanup: () => Promise<void>) => void) | undefined;
  /** How long a model ended by a stop signal waits to see whether the engine is going down (tests shorten it). */
  readonly engineWatch?: EngineWatchTiming | undefined;
  readonly logger: Logger;
}

/** When each phase of a job ended (epoch ms), for the overhead metrics. */
export interface JobTimings {
  readonly takenAt: number;
  /** When each step of the job ended (epoch ms), by name, in order: where the overhead goes. */
  readonly steps: Record<string, number>;
  containerStartedAt?: number;
  containerExitedAt?: number;
  outputStoredAt?: number;
}

/** How a job ended, as the message to publish. */
export type JobOutcome =
  | { readonly kind: 'finished'; readonly body: JobFinished; readonly timings: JobTimings }
  | { readonly kind: 'failed'; readonly body: JobFailed; readonly timings: JobTimings };

/**
 * Runs one job's model to its outcome: checks its `docker_kwargs`, makes sure the image and static volumes
 * are there, creates the container (removing one an earlier attempt of the same job left), streams the input
 * in, starts it, publishes `job.started`, waits for it (at most `timeout`), keeps the end of its log, then
 * stores its checked output. The container is always removed. Failures that retrying cannot mend resolve as
 * a `failed` outcome; transient ones (S3, Docker or RabbitMQ away) reject so the job is retried.
 */
export async function execJob(
  deps: JobDeps,
  job: Job,
  slot: Slot,
  takenAt = Date.now(),
): Promise<JobOutcome> {
  const timings: JobTimings = { takenAt, steps: {} };
  const name = containerName(job.runId, job.step);
  const facts = { worker: deps.worker };
  if (deps.running.has(name)) {
    // Delivered again while this process still runs it (its channel closed meanwhile): the running attempt
    // publishes the outcome, so this copy is dropped.
    throw new GoneError(`job ${name} is running in this consumer already; this delivery is a repeat`);
  }

  deps.running.add(name);
  let folder: JobFolder | undefined;
  // The model's log goes up beside its output while the output does; a failure found then reuses it.
  let storingLog: ReturnType<typeof storeStepLog> | undefined;
  try {
    folder = await deps.workFolders?.create(job);
    const { exitCode, logExcerpt, startedAt, finishedAt, output } = await runContainer(
      deps,
      job,
      slot,
      name,
      timings,
      folder,
    );
    storingLog = storeStepLog(deps, job, logExcerpt);
    const outputDeps: OutputDeps = {
      storage: deps.storage,
      maxOutputBytes: deps.maxOutputBytes,
      maxOutputEntries: deps.maxOutputEntries,
      onSpooled: () => {
        timings.steps.spool = Date.now();
      },
    };
    await (
      output
        ? output.then((scanned) => storeOutputFolder(outputDeps, scanned, job))
        : collectOutput(outputDeps, deps.docker.getContainer(name), job)
    ).catch((err: unknown) => {
      if (err instanceof JobFailure) throw new JobFailure(err.reason, err.message, { exitCode, logExcerpt });
      throw err;
    });
    timings.outputStoredAt = Date.now();
    timings.steps.upload = timings.outputStoredAt;
    const log = await storingLog;
    return {
      kind: 'finished',
      timings,
      body: {
        runId: job.runId,
        step: job.step,
        output: job.output,
        exitCode,
        startedAt,
        finishedAt,
        ...(log ? { log } : {}),
        ...facts,
      },
    };
  } catch (err) {
    const failure = asJobFailure(err);
    if (!failure) {
      await storingLog;
      throw err;
    }
    const log = await (storingLog ?? storeStepLog(deps, job, failure.facts.logExcerpt ?? ''));
    return {
      kind: 'failed',
      timings,
      body: {
        runId: job.runId,
        step: job.step,
        reason: failure.reason,
        message: failure.message.slice(0, MESSAGE_MAX_CHARS),
        ...(failure.facts.exitCode === undefined ? {} : { exitCode: failure.facts.exitCode }),
        ...(log ? { log } : {}),
        ...facts,
      },
    };
  } finally {
    const cleanup = (): Promise<void> => removeJobLeftovers(deps, name, folder);
    if (deps.deferCleanup) deps.deferCleanup(cleanup);
    else await cleanup();
  }
}

/**
 * Removes the job's container, then its folder (the container no longer writes there), then forgets it
 * is running. Failures are logged: the next start of the consumer removes what is left.
 */
async function removeJobLeftovers(deps: JobDeps, name: string, folder: JobFolder | undefined): Promise<void> {
  try {
    await removeContainer(deps.docker, name);
  } catch (err) {
    deps.logger.warn(
      { container: name, err: dockerMessage(err) },
      'cannot remove the container; the next start removes it',
    );
  }
  try {
    if (folder) await deps.workFolders?.remove(folder);
  } catch (err) {
    deps.logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      'cannot remove the job folder; the next start removes it',
    );
  } finally {
    deps.running.delete(name);
  }
}

/** How a model ran to exit code 0, and (work-folder mode) its output folder's walk. */
interface ModelRun {
  readonly exitCode: number;
  readonly logExcerpt: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly output: Promise<ScannedOutput> | undefined;
}

/** Creates, fills, starts and waits for the container; resolves once it exited 0. */
async function runContainer(
  deps: JobDeps,
  job: Job,
  slot: Slot,
  name: string,
  timings: JobTimings,
  folder: JobFolder | undefined,
): Promise<ModelRun> {
  const { logger } = deps;
  const image = job.model.docker_kwargs.image;
  checkDockerKwargs(job.model.docker_kwargs);
  timings.steps.prepare = Date.now();
  // Work-folder mode: the input is written into the job folder (its own, whatever an earlier attempt left)
  // while an earlier attempt's container is removed and the image, static volumes and container are made
  // ready (when input_dir is output_dir it goes into the output folder).
  const staging = folder
    ? stageInputFolder(
        { storage: deps.storage },
        job,
        containerDir(job.model.input_dir) === containerDir(job.model.output_dir)
          ? folder.output
          : folder.input,
      ).then((staged) => {
        timings.steps.input = Date.now();
        return staged;
      })
    : undefined;
  // Handled here too, so a failure before it is awaited below is not an unhandled rejection.
  void staging?.catch(() => undefined);
  let container: Docker.Container;
  let imageFacts: ImageFacts;
  try {
    // An earlier attempt of this job (its consumer was killed) may have left its container.
    if (
      await removeContainer(deps.docker, name).catch((err: unknown) => {
        throw asTransientDockerError(err, 'removing an old container');
      })
    ) {
      logger.info({ container: name }, 'removed the container of an earlier attempt of this job');
    }
    ({ container, imageFacts } = await createModelContainer(deps, job, slot, name, timings, folder));
  } catch (err) {
    // Nothing may still write into the job folder once it is removed.
    await staging?.catch(() => undefined);
    throw err;
  }
  let input: StagedInput;
  if (staging) input = await staging;
  else {
    input = await stageInput({ storage: deps.storage }, container, job);
    timings.steps.input = Date.now();
  }
  try {
    await container.start();
  } catch (err) {
    const status = dockerStatus(err);
    if (status !== undefined && status < 500)
      throw new JobFailure('error', `the container cannot start: ${dockerMessage(err)}`);
    // The engine answers 500 when it has no runtime for the device request (no GPU or NVIDIA toolkit on
    // this machine): retrying on the same engine cannot mend that, so the job fails with its words.
    if (slot.kind === 'gpu' && isDeviceRequestRefusal(err))
      throw new JobFailure(
        'error',
        `the Docker engine cannot give the container GPU ${slot.gpuId}: ${dockerMessage(err)}`,
      );
    throw asTransientDockerError(err, 'starting the container');
  }
  timings.containerStartedAt = Date.now();
  timings.steps.start = timings.containerStartedAt;
  const startedAt = new Date(timings.containerStartedAt).toISOString();
  logger.info(
    { container: name, image, inputFiles: input.files, inputBytes: input.bytes },
    'container started',
  );
  await deps.publishStarted({
    runId: job.runId,
    step: job.step,
    startedAt,
    image,
    worker: deps.worker,
    ...(slot.kind === 'gpu' ? { gpu: slot.gpuId } : {}),
    // What ran, whatever the tag names later (provenance).
    imageId: imageFacts.id,
    repoDigests: [...imageFacts.repoDigests],
  });
  timings.steps['job.started'] = Date.now();
  const watch = watchOutput({
    container,
    outputDir: folder?.output,
    maxBytes: deps.maxOutputBytes,
    maxEntries: deps.maxOutputEntries,
    baseBytes: folder ? 0 : input.bytes,
    intervalMs: deps.outputCheckMs ?? OUTPUT_CHECK_INTERVAL_MS,
    logger,
  });
  let result;
  try {
    result = await waitForExit(container, job.model.timeout * 1000, deps.signal);
  } catch (err) {
    if (deps.signal.aborted)
      throw new TransientError('the consumer is stopping; the job will run again', { cause: err });
    throw asTransientDockerError(err, 'waiting for the container');
  } finally {
    watch.stop();
  }
  const overflow = watch.stop();
  timings.containerExitedAt = Date.now();
  timings.steps.run = timings.containerExitedAt;
  const finishedAt = new Date(timings.containerExitedAt).toISOString();
  const { logExcerpt, output } = await checkExit(deps, {
    container,
    name,
    job,
    result,
    overflow,
    outputDir: folder?.output,
  });
  timings.steps.checks = Date.now();
  return { exitCode: 0, logExcerpt, startedAt, finishedAt, output };
}

/** Makes sure the image and static volumes are there, then creates the job's container. */
async function createModelContainer(
  deps: JobDeps,
  job: Job,
  slot: Slot,
  name: string,
  timings: JobTimings,
  folder: JobFolder | undefined,
): Promise<{ container: Docker.Container; imageFacts: ImageFacts }> {
  const image = job.model.docker_kwargs.image;
  const imageFacts = await ensureImage(deps.docker, image, job.model.pull_before_exec, deps.logger);
  timings.steps.image = Date.now();
  const staticMounts = await deps.staticVolumes.prepare(job.model.static_mounts, image);
  timings.steps.static = Date.now();
  const options = buildCreateOptions({
    job,
    slot,
    consumerId: deps.consumerId,
    staticMounts,
    jobFolder: folder,
    limits: deps.limits,
    imageRunsAsRoot: runsAsRoot(imageFacts.user),
  });
  try {
    const container = await deps.docker.createContainer(options);
    timings.steps.create = Date.now();
    return { container, imageFacts };
  } catch (err) {
    const status = dockerStatus(err);
    if (status === 409)
      throw new TransientError(`container ${name} exists already (another attempt is creating it)`);
    if (status !== undefined && status < 500)
      throw new JobFailure('error', `the container cannot be created: ${dockerMessage(err)}`);
    throw asTransientDockerError(err, 'creating the container');
  }
}

/** A failure retrying cannot mend as a {@link JobFailure}; undefined for a transient one (retried). */
function asJobFailure(err: unknown): JobFailure | undefined {
  if (err instanceof JobFailure) return err;
  if (errorKind(err) === 'transient') return undefined;
  return new JobFailure('error', err instanceof Error ? err.message : String(err));
}

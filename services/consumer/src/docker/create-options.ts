import { posix } from 'node:path';
import type { ContainerCreateOptions, MountSettings } from 'dockerode';
import { DockerKwargs, REFUSED_DOCKER_KWARGS, type Job } from '@dicomflow/messages';
import { JobFailure } from '../jobs/job-failure.js';
import { splitCommandLine } from './command-line.js';

/** Label naming the consumer that created a container (see leftovers.ts). */
export const CONSUMER_LABEL = 'dicomflow.consumer';
/** Labels naming the job a container runs. */
export const RUN_LABEL = 'dicomflow.run-id';
export const STEP_LABEL = 'dicomflow.step';
/** What a container is for: `model` (a job) or `static-fill` (copying static content into a volume). */
export const ROLE_LABEL = 'dicomflow.role';

/** The slot a job runs on: a CPU slot, or the GPU slot of one GPU id. */
export type Slot =
  { readonly kind: 'cpu'; readonly index: number } | { readonly kind: 'gpu'; readonly gpuId: string };

/** A static volume mounted read-only into the model container. */
export interface StaticVolumeMount {
  readonly volume: string;
  readonly target: string;
}

/** The job folder's input and output as the Docker engine's host sees them (work-folder mode). */
export interface JobFolderBinds {
  readonly hostInput: string;
  readonly hostOutput: string;
}

/**
 * The operator's bounds on model containers (CONSUMER_* keys): defaults for a flow that sets none, and
 * maxima a flow may not exceed. 0 means none.
 */
export interface ContainerLimits {
  readonly memoryBytes: number;
  readonly maxMemoryBytes: number;
  readonly pids: number;
  readonly maxPids: number;
  /** User for images that run as root when the flow names none; empty: off. */
  readonly defaultUser: string;
}

/** No defaults, no maxima, no default user: what the engine does by itself (tests of other concerns). */
export const NO_LIMITS: ContainerLimits = {
  memoryBytes: 0,
  maxMemoryBytes: 0,
  pids: 0,
  maxPids: 0,
  defaultUser: '',
};

/** Everything the create options of a job's container depend on. */
export interface ContainerPlan {
  readonly job: Job;
  readonly slot: Slot;
  readonly consumerId: string;
  readonly staticMounts: readonly StaticVolumeMount[];
  /** Bound at `input_dir` (read-only) and `output_dir`; absent when the input is copied in by the Engine API. */
  readonly jobFolder?: JobFolderBinds | undefined;
  readonly limits: ContainerLimits;
  /** Whether the image's configuration runs as root (then `limits.defaultUser` applies). */
  readonly imageRunsAsRoot: boolean;
}

/** Size of the writable /tmp of a read-only container; it counts against the container's memory. */
const READ_ONLY_TMP = 'rw,nosuid,nodev,size=1g';

/** The deterministic container name of a job: a redelivered job finds the container of its first attempt. */
export function containerName(runId: string, step: number): string {
  return `dicomflow-${runId}-${step}`;
}

const KNOWN_KWARGS: ReadonlySet<string> = new Set(Object.keys(DockerKwargs.properties));

/**
 * Refuses `docker_kwargs` keys outside the allow-list, naming the key (and the reason for the keys that
 * widen what a container can reach). The flow loader and the message schema refuse them already; this is
 * the consumer's own check, since it is the one that talks to the Docker engine.
 */
export function checkDockerKwargs(kwargs: Readonly<Record<string, unknown>>): void {
  for (const key of Object.keys(kwargs)) {
    const refused = REFUSED_DOCKER_KWARGS[key];
    if (refused !== undefined) throw new JobFailure('error', `docker_kwargs.${key} is refused: ${refused}`);
    if (!KNOWN_KWARGS.has(key)) throw new JobFailure('error', `docker_kwargs.${key} is not an allowed key`);
  }
}

const UNITS: Readonly<Record<string, number>> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A docker-py size (`512m`, `2g`, or a byte count) in bytes. */
export function parseByteSize(value: number | string): number {
  if (typeof value === 'number') return value;
  const match = /^([0-9]+)([bkmgBKMG]?)$/.exec(value);
  if (!match?.[1]) throw new JobFailure('error', `"${value}" is not a byte size`);
  return Number(match[1]) * (UNITS[(match[2] ?? '').toLowerCase()] ?? 1);
}

function commandArgs(value: string | readonly string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? splitCommandLine(value) : [...value];
}

/** `NAME: value` mapping or `NAME=value` list, as `[name, value]` pairs. */
function pairs(
  value: Readonly<Record<string, string | number | boolean>> | readonly string[] | undefined,
): [string, string][] {
  if (value === undefined) return [];
  if (Array.isArray(value)) {
    return (value as readonly string[]).map((item) => {
      const at = item.indexOf('=');
      return [item.slice(0, at), item.slice(at + 1)];
    });
  }
  return Object.entries(value).map(([name, item]) => [name, String(item)]);
}

/** The environment the consumer gives every model (it wins over the flow's own variables of the same name). */
export function modelEnvironment(job: Job): Record<string, string> {
  return {
    DICOMFLOW_RUN_ID: job.runId,
    DICOMFLOW_FLOW_NAME: job.flowName,
    DICOMFLOW_FLOW_VERSION: job.flowVersion,
    DICOMFLOW_STEP: String(job.step),
    DICOMFLOW_STEP_COUNT: String(job.stepCount),
    DICOMFLOW_INPUT_DIR: job.model.input_dir,
    DICOMFLOW_OUTPUT_DIR: job.model.output_dir,
  };
}

/**
 * The consumer's own binds of the job folder (the flow's `docker_kwargs` can never add binds or volumes):
 * the input at `input_dir`, the output at `output_dir`; when both are one folder, only the output (the
 * input was written into it). Writable as the container's own folders are in the archive mode.
 */
function jobFolderMounts(plan: ContainerPlan): MountSettings[] {
  if (!plan.jobFolder) return archiveModeMounts(plan);
  const input = containerDir(plan.job.model.input_dir);
  const output = containerDir(plan.job.model.output_dir);
  const outputMount = { Type: 'bind' as const, Source: plan.jobFolder.hostOutput, Target: output };
  if (input === output) return [outputMount];
  return [{ Type: 'bind' as const, Source: plan.jobFolder.hostInput, Target: input }, outputMount];
}

/**
 * Without a job folder the input is copied in and the output out through the Engine API's archive calls,
 * which the engine refuses on a read-only root file system except into a volume: a read-only container
 * gets anonymous volumes at `input_dir` and `output_dir` (removed with the container).
 */
function archiveModeMounts(plan: ContainerPlan): MountSettings[] {
  if (plan.job.model.docker_kwargs.read_only !== true) return [];
  const targets = new Set([containerDir(plan.job.model.input_dir), containerDir(plan.job.model.output_dir)]);
  // An empty source makes the engine create an anonymous volume.
  return [...targets].map((target) => ({ Type: 'volume' as const, Source: '', Target: target }));
}

/** A container path without its trailing slash ("/input/" -> "/input"). */
export function containerDir(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

/** A flow's value, else the operator's default; refused above the operator's maximum (0: none). */
function bounded(
  asked: number | undefined,
  fallback: number,
  max: number,
  what: string,
  key: string,
): number {
  const value = asked ?? fallback;
  if (max > 0 && value > max)
    throw new JobFailure('error', `${what} ${value} is above this consumer's maximum ${max} (${key})`);
  return value;
}

/**
 * The hardening every model container gets: no capabilities, no privilege gain (setuid binaries do not
 * help), bounded memory and processes, optionally a read-only root with a tmpfs /tmp, and the operator's
 * default user for images that would run as root.
 */
function hardening(plan: ContainerPlan): NonNullable<ContainerCreateOptions['HostConfig']> {
  const kwargs = plan.job.model.docker_kwargs;
  const { limits } = plan;
  const memory = bounded(
    kwargs.mem_limit === undefined ? undefined : parseByteSize(kwargs.mem_limit),
    limits.memoryBytes,
    limits.maxMemoryBytes,
    'docker_kwargs.mem_limit',
    'CONSUMER_MAX_MEMORY_LIMIT',
  );
  const pids = bounded(
    kwargs.pids_limit,
    limits.pids,
    limits.maxPids,
    'docker_kwargs.pids_limit',
    'CONSUMER_MAX_PIDS_LIMIT',
  );
  const readOnly = kwargs.read_only === true;
  return {
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    ReadonlyRootfs: readOnly,
    ...(readOnly ? { Tmpfs: { '/tmp': READ_ONLY_TMP } } : {}),
    ...(memory > 0 ? { Memory: memory } : {}),
    ...(pids > 0 ? { PidsLimit: pids } : {}),
  };
}

/** The user the container runs as: the flow's, else the default user for a root image, else the image's. */
function containerUser(plan: ContainerPlan): string | undefined {
  const asked = plan.job.model.docker_kwargs.user;
  if (asked !== undefined) return String(asked);
  if (plan.imageRunsAsRoot && plan.limits.defaultUser !== '') return plan.limits.defaultUser;
  return undefined;
}

/**
 * The Engine API create options of a job's container, from its flow's `docker_kwargs` (snake_case, as
 * docker-py names them) plus what the consumer owns: name, labels, environment, network (none unless the
 * model sets `network: true`), the slot's GPU, the static volumes (read-only) and the hardening
 * ({@link ContainerLimits}). Throws a {@link JobFailure} naming a refused key or a limit above its maximum.
 */
export function buildCreateOptions(plan: ContainerPlan): ContainerCreateOptions {
  const { job, slot } = plan;
  const kwargs = job.model.docker_kwargs;
  checkDockerKwargs(kwargs);
  const env = new Map(pairs(kwargs.environment));
  for (const [name, value] of Object.entries(modelEnvironment(job))) env.set(name, value);
  const labels: Record<string, string> = Object.fromEntries(pairs(kwargs.labels));
  Object.assign(labels, {
    [CONSUMER_LABEL]: plan.consumerId,
    [RUN_LABEL]: job.runId,
    [STEP_LABEL]: String(job.step),
    [ROLE_LABEL]: 'model',
  });
  const cmd = commandArgs(kwargs.command);
  const entrypoint = commandArgs(kwargs.entrypoint);
  const user = containerUser(plan);
  const hostConfig: NonNullable<ContainerCreateOptions['HostConfig']> = {
    NetworkMode: job.model.network ? 'bridge' : 'none',
    Privileged: false,
    ...hardening(plan),
    Mounts: [
      ...jobFolderMounts(plan),
      ...plan.staticMounts.map((mount) => ({
        Type: 'volume' as const,
        Source: mount.volume,
        Target: mount.target,
        ReadOnly: true,
      })),
    ],
    ...(kwargs.shm_size === undefined ? {} : { ShmSize: parseByteSize(kwargs.shm_size) }),
    ...(kwargs.mem_reservation === undefined
      ? {}
      : { MemoryReservation: parseByteSize(kwargs.mem_reservation) }),
    ...(kwargs.memswap_limit === undefined ? {} : { MemorySwap: parseByteSize(kwargs.memswap_limit) }),
    ...(kwargs.nano_cpus === undefined ? {} : { NanoCpus: kwargs.nano_cpus }),
    ...(kwargs.cpu_shares === undefined ? {} : { CpuShares: kwargs.cpu_shares }),
    ...(kwargs.cpu_period === undefined ? {} : { CpuPeriod: kwargs.cpu_period }),
    ...(kwargs.cpu_quota === undefined ? {} : { CpuQuota: kwargs.cpu_quota }),
    ...(kwargs.cpuset_cpus === undefined ? {} : { CpusetCpus: kwargs.cpuset_cpus }),
    ...(slot.kind === 'gpu'
      ? { DeviceRequests: [{ Driver: 'nvidia', DeviceIDs: [slot.gpuId], Capabilities: [['gpu']] }] }
      : {}),
  };
  return {
    name: containerName(job.runId, job.step),
    Image: kwargs.image,
    Env: [...env].map(([name, value]) => `${name}=${value}`),
    Labels: labels,
    ...(cmd === undefined ? {} : { Cmd: cmd }),
    ...(entrypoint === undefined ? {} : { Entrypoint: entrypoint }),
    ...(kwargs.working_dir === undefined ? {} : { WorkingDir: kwargs.working_dir }),
    ...(user === undefined ? {} : { User: user }),
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    HostConfig: hostConfig,
  };
}

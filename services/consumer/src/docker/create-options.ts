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

/** Everything the create options of a job's container depend on. */
export interface ContainerPlan {
  readonly job: Job;
  readonly slot: Slot;
  readonly consumerId: string;
  readonly staticMounts: readonly StaticVolumeMount[];
  /** Bound at `input_dir` (read-only) and `output_dir`; absent when the input is copied in by the Engine API. */
  readonly jobFolder?: JobFolderBinds | undefined;
}

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
  if (!plan.jobFolder) return [];
  const input = containerDir(plan.job.model.input_dir);
  const output = containerDir(plan.job.model.output_dir);
  const outputMount = { Type: 'bind' as const, Source: plan.jobFolder.hostOutput, Target: output };
  if (input === output) return [outputMount];
  return [{ Type: 'bind' as const, Source: plan.jobFolder.hostInput, Target: input }, outputMount];
}

/** A container path without its trailing slash ("/input/" -> "/input"). */
export function containerDir(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

/**
 * The Engine API create options of a job's container, from its flow's `docker_kwargs` (snake_case, as
 * docker-py names them) plus what the consumer owns: name, labels, environment, network (none unless the
 * model sets `network: true`), the slot's GPU and the static volumes (read-only). Throws a
 * {@link JobFailure} naming a refused key.
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
  const hostConfig: NonNullable<ContainerCreateOptions['HostConfig']> = {
    NetworkMode: job.model.network ? 'bridge' : 'none',
    Privileged: false,
    ReadonlyRootfs: false,
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
    ...(kwargs.mem_limit === undefined ? {} : { Memory: parseByteSize(kwargs.mem_limit) }),
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
    ...(kwargs.user === undefined ? {} : { User: String(kwargs.user) }),
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    HostConfig: hostConfig,
  };
}

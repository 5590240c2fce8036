import { Type, type Static } from '@sinclair/typebox';

const COMMAND_ERROR = 'must be a string or a list of strings';
const BYTES_PATTERN = '^[0-9]+[bkmgBKMG]?$';
const BYTES_ERROR = 'must be a byte count or a size such as "512m" or "2g"';

/** A command line: one string (split like a shell would) or the argument list. */
function commandLine(description: string) {
  return Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String(), { minItems: 1 })], {
    errorMessage: COMMAND_ERROR,
    description,
  });
}

/** A size in bytes: an integer, or digits with a unit suffix as docker-py accepts them. */
function byteSize(description: string) {
  return Type.Union(
    [Type.Integer({ minimum: 0 }), Type.String({ pattern: BYTES_PATTERN, patternErrorMessage: BYTES_ERROR })],
    { errorMessage: BYTES_ERROR, description },
  );
}

/** `NAME: value` pairs, or `NAME=value` strings (both forms docker-py accepts). */
function stringMap(description: string) {
  return Type.Union(
    [
      Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
      Type.Array(Type.String({ pattern: '^[^=]+=', patternErrorMessage: 'must be "NAME=value"' })),
    ],
    { errorMessage: 'must be a mapping of NAME: value or a list of "NAME=value" strings', description },
  );
}

/**
 * The `docker_kwargs` of a model: the subset of docker-py's `containers.run` arguments a flow may set.
 * Everything that widens what the container can reach (privileges, host namespaces, devices, host paths,
 * capabilities, networks) is refused: the consumer alone decides those (see {@link REFUSED_DOCKER_KWARGS}).
 */
export const DockerKwargs = Type.Object(
  {
    image: Type.String({
      minLength: 1,
      description: 'Image to run, e.g. "busybox:1.36" or "registry/model:2".',
    }),
    command: Type.Optional(commandLine('Command (overrides the image CMD).')),
    entrypoint: Type.Optional(commandLine('Entrypoint (overrides the image ENTRYPOINT).')),
    environment: Type.Optional(stringMap('Environment variables.')),
    working_dir: Type.Optional(Type.String({ minLength: 1, description: 'Working directory.' })),
    user: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0 })], {
        errorMessage: 'must be a user name, "uid:gid" or a numeric uid',
        description: 'User (name, uid or "uid:gid") the command runs as.',
      }),
    ),
    labels: Type.Optional(stringMap('Container labels.')),
    shm_size: Type.Optional(byteSize('Size of /dev/shm, e.g. "2g".')),
    mem_limit: Type.Optional(
      byteSize(
        'Memory limit, e.g. "8g" (default: the consumer\'s CONSUMER_MEMORY_LIMIT, at most its CONSUMER_MAX_MEMORY_LIMIT).',
      ),
    ),
    mem_reservation: Type.Optional(byteSize('Memory soft limit.')),
    memswap_limit: Type.Optional(byteSize('Memory plus swap limit.')),
    nano_cpus: Type.Optional(Type.Integer({ minimum: 1, description: 'CPU quota in units of 1e-9 CPUs.' })),
    cpu_shares: Type.Optional(Type.Integer({ minimum: 0, description: 'Relative CPU weight.' })),
    cpu_period: Type.Optional(Type.Integer({ minimum: 1000, description: 'CFS period in microseconds.' })),
    cpu_quota: Type.Optional(Type.Integer({ minimum: 1000, description: 'CFS quota in microseconds.' })),
    pids_limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          "Most processes and threads the container may have (default: the consumer's CONSUMER_PIDS_LIMIT, at most its CONSUMER_MAX_PIDS_LIMIT).",
      }),
    ),
    read_only: Type.Optional(
      Type.Boolean({
        description:
          'Read-only root file system, with a writable tmpfs at /tmp (the output folder stays writable).',
      }),
    ),
    cpuset_cpus: Type.Optional(
      Type.String({
        pattern: '^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$',
        patternErrorMessage: 'must list CPUs such as "0-3" or "0,2"',
        description: 'CPUs the container may use, e.g. "0-3".',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Arguments of docker-py containers.run (https://docker-py.readthedocs.io/en/stable/containers.html) ' +
      'that a flow may set; privileges, host namespaces, devices, mounts and networks are refused.',
  },
);
export type DockerKwargs = Static<typeof DockerKwargs>;

const MOUNTS = 'host paths are never mounted: the consumer mounts /input, /output and static_mounts itself';
const NETWORK = 'the consumer sets the network: use the model field "network: true" to give it one';
const NAMESPACE = 'containers never share a namespace with the host or another container';
const DEVICES = 'devices are never passed through: use the model field "gpu: true" for a GPU';
const CONSUMER = 'the consumer sets this itself';

/**
 * docker-py arguments a flow is refused outright, with the reason shown to its author. Any other key not
 * in {@link DockerKwargs} is refused too, as unknown.
 */
export const REFUSED_DOCKER_KWARGS: Readonly<Record<string, string>> = {
  privileged: 'containers never run privileged',
  cap_add: 'containers never get extra capabilities',
  security_opt: 'security options (seccomp, AppArmor, SELinux) are never relaxed',
  sysctls: 'kernel parameters are never changed',
  binds: MOUNTS,
  volumes: MOUNTS,
  volumes_from: MOUNTS,
  mounts: MOUNTS,
  tmpfs: MOUNTS,
  devices: DEVICES,
  device_requests: DEVICES,
  device_cgroup_rules: DEVICES,
  runtime: DEVICES,
  network_mode: NETWORK,
  network: NETWORK,
  networks: NETWORK,
  network_disabled: NETWORK,
  ports: NETWORK,
  publish_all_ports: NETWORK,
  extra_hosts: NETWORK,
  dns: NETWORK,
  pid_mode: NAMESPACE,
  ipc_mode: NAMESPACE,
  uts_mode: NAMESPACE,
  userns_mode: NAMESPACE,
  cgroupns: NAMESPACE,
  cgroup_parent: NAMESPACE,
  name: CONSUMER,
  detach: CONSUMER,
  remove: CONSUMER,
  auto_remove: CONSUMER,
  restart_policy: CONSUMER,
};

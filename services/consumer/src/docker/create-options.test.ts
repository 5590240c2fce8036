import { describe, expect, it } from 'vitest';
import { REFUSED_DOCKER_KWARGS, type Job } from '@dicomflow/messages';
import { jobFixture } from '../testing/fixtures.js';
import { JobFailure } from '../jobs/job-failure.js';
import {
  buildCreateOptions,
  checkDockerKwargs,
  parseByteSize,
  type ContainerLimits,
  type ContainerPlan,
} from './create-options.js';

function job(extra: Partial<Parameters<typeof jobFixture>[0]> = {}): Job {
  return jobFixture({
    image: 'model:1',
    input: { kind: 'step', step: 0, bucket: 'runs', key: 'r/0/output.tar' },
    runsBucket: 'runs',
    runId: '0b8e8f1e-4d7c-4f43-9a53-2f4cf7a0d001',
    step: 1,
    stepCount: 3,
    ...extra,
  });
}

const LIMITS: ContainerLimits = {
  memoryBytes: 4 * 1024 ** 3,
  maxMemoryBytes: 8 * 1024 ** 3,
  pids: 256,
  maxPids: 1024,
  defaultUser: '',
};

function plan(
  j: Job,
  slot: ContainerPlan['slot'] = { kind: 'cpu', index: 0 },
  extra: Partial<ContainerPlan> = {},
): ContainerPlan {
  return {
    job: j,
    slot,
    consumerId: 'node-a',
    staticMounts: [],
    limits: LIMITS,
    imageRunsAsRoot: true,
    ...extra,
  };
}

describe('buildCreateOptions', () => {
  it('gives a GPU slot a device request for exactly its own GPU id', () => {
    const options = buildCreateOptions(plan(job({ model: { gpu: true } }), { kind: 'gpu', gpuId: '3' }));
    expect(options.HostConfig?.DeviceRequests).toEqual([
      { Driver: 'nvidia', DeviceIDs: ['3'], Capabilities: [['gpu']] },
    ]);
  });

  it('gives a CPU slot no device request', () => {
    expect(buildCreateOptions(plan(job())).HostConfig?.DeviceRequests).toBeUndefined();
  });

  it('maps the snake_case kwargs to the Engine API and adds what the consumer owns', () => {
    const options = buildCreateOptions({
      ...plan(
        job({
          dockerKwargs: {
            command: 'sh -c \'echo "a b" > /output/x\'',
            entrypoint: ['/bin/env'],
            environment: { MODE: 'fast', DICOMFLOW_RUN_ID: 'spoofed' },
            working_dir: '/work',
            user: 1000,
            labels: ['team=ai'],
            shm_size: '2g',
            mem_limit: '512m',
            mem_reservation: 1024,
            memswap_limit: '1g',
            nano_cpus: 2_000_000_000,
            cpu_shares: 512,
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpuset_cpus: '0-1',
          },
        }),
      ),
      staticMounts: [{ volume: 'dicomflow-static-abc', target: '/weights' }],
    });
    expect(options).toMatchObject({
      name: 'dicomflow-0b8e8f1e-4d7c-4f43-9a53-2f4cf7a0d001-1',
      Image: 'model:1',
      Cmd: ['sh', '-c', 'echo "a b" > /output/x'],
      Entrypoint: ['/bin/env'],
      WorkingDir: '/work',
      User: '1000',
      Labels: {
        team: 'ai',
        'dicomflow.consumer': 'node-a',
        'dicomflow.run-id': '0b8e8f1e-4d7c-4f43-9a53-2f4cf7a0d001',
        'dicomflow.step': '1',
        'dicomflow.role': 'model',
      },
    });
    expect(options.Env).toContain('MODE=fast');
    expect(options.Env).toContain('DICOMFLOW_RUN_ID=0b8e8f1e-4d7c-4f43-9a53-2f4cf7a0d001');
    expect(options.Env).toContain('DICOMFLOW_STEP=1');
    expect(options.Env).toContain('DICOMFLOW_FLOW_NAME=consumer-test');
    expect(options.Env).toContain('DICOMFLOW_FLOW_VERSION=1.0');
    expect(options.Env).not.toContain('DICOMFLOW_RUN_ID=spoofed');
    expect(options.HostConfig).toEqual({
      NetworkMode: 'none',
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: false,
      PidsLimit: 256,
      Mounts: [{ Type: 'volume', Source: 'dicomflow-static-abc', Target: '/weights', ReadOnly: true }],
      ShmSize: 2 * 1024 ** 3,
      Memory: 512 * 1024 ** 2,
      MemoryReservation: 1024,
      MemorySwap: 1024 ** 3,
      NanoCpus: 2_000_000_000,
      CpuShares: 512,
      CpuPeriod: 100_000,
      CpuQuota: 50_000,
      CpusetCpus: '0-1',
    });
  });

  it('hardens every container: no capabilities, no privilege gain, default memory and pids limits', () => {
    expect(buildCreateOptions(plan(job())).HostConfig).toMatchObject({
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: false,
      Memory: 4 * 1024 ** 3,
      PidsLimit: 256,
    });
    const options = buildCreateOptions(
      plan(job(), undefined, { limits: { ...LIMITS, memoryBytes: 0, pids: 0 } }),
    );
    expect(options.HostConfig?.Memory).toBeUndefined();
    expect(options.HostConfig?.PidsLimit).toBeUndefined();
    expect(options.HostConfig?.CapDrop).toEqual(['ALL']);
  });

  it('lets a flow set its limits within the maxima, and refuses one above, naming the key', () => {
    const within = job({ dockerKwargs: { mem_limit: '8g', pids_limit: 1024 } });
    expect(buildCreateOptions(plan(within)).HostConfig).toMatchObject({
      Memory: 8 * 1024 ** 3,
      PidsLimit: 1024,
    });
    expect(() => buildCreateOptions(plan(job({ dockerKwargs: { mem_limit: '9g' } })))).toThrow(
      new JobFailure(
        'error',
        `docker_kwargs.mem_limit ${9 * 1024 ** 3} is above this consumer's maximum ${8 * 1024 ** 3} (CONSUMER_MAX_MEMORY_LIMIT)`,
      ),
    );
    expect(() => buildCreateOptions(plan(job({ dockerKwargs: { pids_limit: 1025 } })))).toThrow(
      /docker_kwargs.pids_limit 1025 is above this consumer's maximum 1024 \(CONSUMER_MAX_PIDS_LIMIT\)/,
    );
  });

  it('gives read_only: true a read-only root with a tmpfs /tmp', () => {
    expect(buildCreateOptions(plan(job({ dockerKwargs: { read_only: true } }))).HostConfig).toMatchObject({
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=1g' },
    });
  });

  it('runs a root image as CONSUMER_DEFAULT_USER when set, never overriding a flow or a non-root image', () => {
    const limits = { ...LIMITS, defaultUser: '65534:65534' };
    expect(buildCreateOptions(plan(job(), undefined, { limits })).User).toBe('65534:65534');
    expect(
      buildCreateOptions(plan(job(), undefined, { limits, imageRunsAsRoot: false })).User,
    ).toBeUndefined();
    expect(
      buildCreateOptions(plan(job({ dockerKwargs: { user: 'model' } }), undefined, { limits })).User,
    ).toBe('model');
    expect(buildCreateOptions(plan(job())).User).toBeUndefined();
  });

  it('gives a network only when the model sets network: true', () => {
    expect(buildCreateOptions(plan(job({ model: { network: true } }))).HostConfig?.NetworkMode).toBe(
      'bridge',
    );
  });

  it.each(Object.keys(REFUSED_DOCKER_KWARGS))('refuses docker_kwargs.%s, naming the key', (key) => {
    const j = job();
    const kwargs = { ...j.model.docker_kwargs, [key]: true };
    const hostile: Job = { ...j, model: { ...j.model, docker_kwargs: kwargs } };
    expect(() => buildCreateOptions(plan(hostile))).toThrow(new RegExp(`docker_kwargs\\.${key} is refused`));
  });

  it('refuses an unknown key as not allowed', () => {
    expect(() => {
      checkDockerKwargs({ image: 'x', oom_kill_disable: true });
    }).toThrow(new JobFailure('error', 'docker_kwargs.oom_kill_disable is not an allowed key'));
  });
});

describe('parseByteSize', () => {
  it('reads docker-py sizes', () => {
    expect([
      parseByteSize(12),
      parseByteSize('12'),
      parseByteSize('3k'),
      parseByteSize('2M'),
      parseByteSize('1g'),
    ]).toEqual([12, 12, 3072, 2 * 1024 ** 2, 1024 ** 3]);
  });
});

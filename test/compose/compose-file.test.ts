// compose.yaml, the Dockerfile and .env.example, checked with a real compose tool (Debian's docker-compose,
// installed by scripts/test.sh) and against the repository. The image itself is not built here: the
// node:24-slim base image needs a registry this machine cannot reach.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SERVICE_NAMES } from '@dicomflow/config';
import { runCommand } from '@dicomflow/test-helpers';
import { NODE_FLAGS } from '../../scripts/stack-lib.mjs';

const ROOT = resolve(import.meta.dirname, '..', '..');
const COMPOSE_FILE = join(ROOT, 'compose.yaml');
const ONE_OF_OURS = /^services\/([a-z-]+)\/dist\/main\.js$/;

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  container_name?: string;
  ports?: unknown[];
  volumes?: string[];
  environment?: Record<string, string | number | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  restart?: string;
  init?: boolean;
  group_add?: unknown[];
  user?: string;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

let work: string;
let envFile: string;
let raw: ComposeFile;
let resolved: ComposeFile;

/** `.env.example` with every empty required secret filled in, as a user would. */
async function filledEnvFile(): Promise<string> {
  const example = await readFile(join(ROOT, '.env.example'), 'utf8');
  return example.replace(/^([A-Z_]+(?:PASSWORD|TOKEN|KEY))=$/gm, '$1=not-a-real-secret-$1');
}

async function composeConfig(
  env: string,
  ...options: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = join(work, `${String(Math.random()).slice(2)}.env`);
  await writeFile(file, env);
  // A clean environment: only the env file decides (no DICOMFLOW_* or password of the machine leaks in).
  return runCommand('docker-compose', ['-f', COMPOSE_FILE, '--env-file', file, 'config', ...options], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeoutMs: 60_000,
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'compose-test-'));
  envFile = await filledEnvFile();
  raw = parse(await readFile(COMPOSE_FILE, 'utf8'), { merge: true }) as ComposeFile;
  const result = await composeConfig(envFile).catch((err: unknown) => {
    throw new Error(
      `docker-compose is needed for this test (scripts/test.sh installs Debian's docker-compose): ${String(err)}`,
    );
  });
  if (result.code !== 0) throw new Error(`docker-compose config failed:\n${result.stderr}`);
  resolved = parse(result.stdout) as ComposeFile;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function ours(): [string, ComposeService][] {
  return Object.entries(resolved.services).filter(([, service]) =>
    ONE_OF_OURS.test(service.command?.at(-1) ?? ''),
  );
}

describe('compose.yaml', () => {
  it('is valid for docker-compose with the values of .env.example filled in', async () => {
    const quiet = await composeConfig(envFile, '-q');
    expect([quiet.code, quiet.stdout, quiet.stderr]).toEqual([0, '', '']);
  });

  it('refuses to start without the secrets, naming the missing one', async () => {
    const result = await composeConfig(await readFile(join(ROOT, '.env.example'), 'utf8'));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/set [A-Z_]+(PASSWORD) in \.env/);
  });

  it('runs each of the seven services from its own services/<name>/src/main.ts, in one image', () => {
    const started = ours().map(([, service]) => ONE_OF_OURS.exec(service.command?.at(-1) ?? '')?.[1]);
    expect([...started].sort()).toEqual([...SERVICE_NAMES].sort());
    for (const name of started)
      expect(existsSync(join(ROOT, 'services', String(name), 'src', 'main.ts'))).toBe(true);
    const images = new Set(ours().map(([, service]) => service.image));
    expect(images.size).toBe(1);
    for (const [, service] of ours()) {
      expect(service.init).toBe(true);
      expect(service.command?.[0]).toBe('node');
    }
  });

  it('starts each service with the Node flags of its `npm start` and of `npm run stack`', async () => {
    const flagsOf: Readonly<Record<string, readonly string[]>> = NODE_FLAGS;
    for (const [, service] of ours()) {
      const name = String(ONE_OF_OURS.exec(service.command?.at(-1) ?? '')?.[1]);
      const pkg = JSON.parse(await readFile(join(ROOT, 'services', name, 'package.json'), 'utf8')) as {
        scripts: { start: string };
      };
      const startFlags = pkg.scripts.start.split(/\s+/).filter((word) => word.startsWith('--'));
      const composeFlags = service.command?.slice(1, -1);
      expect({ name, flags: composeFlags }).toEqual({ name, flags: startFlags });
      expect({ name, flags: [...(flagsOf[name] ?? [])] }).toEqual({ name, flags: startFlags });
    }
    expect(NODE_FLAGS.storescp).toEqual(['--max-semi-space-size=1', '--expose-gc']);
    expect(NODE_FLAGS.sender).toEqual([
      '--max-semi-space-size=1',
      '--external-memory-accounted-in-global-limit',
      '--expose-gc',
    ]);
    expect(NODE_FLAGS.consumer).toEqual([
      '--max-semi-space-size=1',
      '--external-memory-accounted-in-global-limit',
      '--expose-gc',
    ]);
  });

  it('uses only Node flags this Node accepts (an unknown V8 flag would stop the service at start)', async () => {
    for (const [name, flags] of Object.entries(NODE_FLAGS)) {
      const result = await runCommand(process.execPath, [...flags, '-e', 'process.stdout.write("ok")'], {
        timeoutMs: 30_000,
      });
      expect({ name, code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({
        name,
        code: 0,
        stdout: 'ok',
        stderr: '',
      });
    }
  });

  it('has the infrastructure: rabbitmq with its management UI, postgres, minio, grafana', () => {
    expect(resolved.services.rabbitmq?.image).toMatch(/^rabbitmq:.*management/);
    expect(resolved.services.postgres?.image).toMatch(/^postgres:/);
    expect(resolved.services.minio?.image).toMatch(/^minio\/minio:/);
    expect(resolved.services.grafana?.image).toMatch(/^grafana\/grafana:/);
    expect(resolved.services.grafana?.volumes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/\/mounts\/grafana\/provisioning:\/etc\/grafana\/provisioning:ro$/) as string,
        expect.stringMatching(/\/mounts\/grafana\/dashboards:/) as string,
      ]),
    );
  });

  it('gives Grafana the dashboards folder and every variable its provisioning reads', async () => {
    const grafana = resolved.services.grafana;
    const provisioning = join(ROOT, 'mounts', 'grafana', 'provisioning');
    const providers = parse(await readFile(join(provisioning, 'dashboards', 'dashboards.yaml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    for (const provider of providers.providers) {
      expect(grafana?.volumes).toContain(
        `${join(ROOT, 'mounts', 'grafana', 'dashboards')}:${provider.options.path}:ro`,
      );
    }
    const datasources = await readFile(join(provisioning, 'datasources', 'postgres.yaml'), 'utf8');
    const variables = [...datasources.matchAll(/\$\{([A-Z_]+)\}/g)].map((match) => match[1]);
    expect(variables.length).toBeGreaterThan(0);
    for (const variable of variables) expect(Object.keys(grafana?.environment ?? {})).toContain(variable);
  });

  it('gives every long-running container a healthcheck, and starts services only on healthy dependencies', () => {
    for (const [name, service] of Object.entries(resolved.services)) {
      const oneShot = service.restart === 'no';
      if (oneShot) {
        // A one-shot container (bucket creation) has nothing to check; whoever needs it waits for its success.
        for (const [other, dependent] of Object.entries(resolved.services)) {
          const condition = dependent.depends_on?.[name]?.condition;
          if (condition !== undefined)
            expect({ other, condition }).toEqual({ other, condition: 'service_completed_successfully' });
        }
        continue;
      }
      expect({ name, test: service.healthcheck?.test?.[0] }).toEqual({
        name,
        test: expect.stringMatching(/^CMD(-SHELL)?$/) as string,
      });
    }
    for (const [name, service] of ours()) {
      expect({ name, port: service.environment?.HTTP_PORT }).toEqual({
        name,
        port: expect.stringMatching(/^\d+$/) as string,
      });
      expect(service.healthcheck?.test?.join(' ')).toMatch(/process\.env\.HTTP_PORT \+ '\/readyz'/);
      for (const dependency of ['rabbitmq', 'postgres', 'minio']) {
        expect({ name, dependency, condition: service.depends_on?.[dependency]?.condition }).toEqual({
          name,
          dependency,
          condition: 'service_healthy',
        });
      }
    }
  });

  it('keeps data in named volumes and mounts flows, static content and conf.d', () => {
    const named = new Set(Object.keys(resolved.volumes ?? {}));
    const mountOf = (service: string, target: string): string | undefined =>
      resolved.services[service]?.volumes
        ?.map((volume) => volume.split(':'))
        .find((parts) => parts[1] === target)?.[0];
    for (const [service, target] of [
      ['storescp', '/var/lib/dicomflow/spool'],
      ['postgres', '/var/lib/postgresql/data'],
      ['minio', '/data'],
      ['rabbitmq', '/var/lib/rabbitmq'],
    ] as const) {
      const source = mountOf(service, target);
      expect({ service, source, named: named.has(String(source)) }).toEqual({ service, source, named: true });
    }
    // Every volume source that is not a host path is declared.
    for (const [, service] of Object.entries(resolved.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0] ?? '';
        if (!source.startsWith('/')) expect(named.has(source)).toBe(true);
      }
    }
    expect(mountOf('fingerprinter', '/opt/dicomflow/flows')).toBe(join(ROOT, 'mounts', 'flows'));
    expect(mountOf('static-storage', '/opt/dicomflow/static')).toBe(join(ROOT, 'mounts', 'static'));
    for (const [name] of ours())
      expect({ name, conf: mountOf(name, '/opt/dicomflow/conf.d') }).toEqual({
        name,
        conf: join(ROOT, 'conf.d'),
      });
    expect(existsSync(join(ROOT, 'mounts', 'static'))).toBe(true);
  });

  it('publishes every port on 127.0.0.1 unless a *_BIND variable says otherwise', async () => {
    const text = await readFile(COMPOSE_FILE, 'utf8');
    const published = [...text.matchAll(/^\s+- (\$\{[A-Z_]+_BIND:-[^}]*\}):\$\{[A-Z_]+_PORT:-\d+\}:\d+$/gm)];
    const allPorts = [...text.matchAll(/^\s+- \S*:\d+$/gm)].filter((line) => /_PORT:-/.test(line[0]));
    expect(published.length).toBe(allPorts.length);
    expect(published.length).toBeGreaterThanOrEqual(7);
    for (const [, bind] of published) expect(bind).toMatch(/^\$\{[A-Z_]+_BIND:-127\.0\.0\.1\}$/);
    for (const [, service] of Object.entries(resolved.services))
      for (const port of service.ports ?? []) expect(String(port)).toMatch(/^127\.0\.0\.1:/);
  });

  it('publishes the DICOM and STOW-RS ports, gives the consumer the Docker socket, and lets the consumer scale', () => {
    expect(resolved.services.storescp?.ports).toEqual([
      '127.0.0.1:10000:10000/tcp',
      '127.0.0.1:8082:8082/tcp',
    ]);
    const consumer = resolved.services.consumer;
    expect(consumer?.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock:rw');
    expect(consumer?.group_add).toBeDefined();
    // Job folders: a host folder at the same path inside and out, removed by a consumer running as root.
    expect(consumer?.volumes).toContain('/var/lib/dicomflow/work:/var/lib/dicomflow/work:rw');
    expect(consumer?.environment?.CONSUMER_WORK_DIR).toBe('/var/lib/dicomflow/work');
    expect(consumer?.user).toBe('root');
    // `--scale consumer=3`: no fixed container name, no host port.
    expect(consumer?.container_name).toBeUndefined();
    expect(consumer?.ports).toBeUndefined();
    // The GPU reservation is there, commented out, for hosts that have GPUs.
    return readFile(COMPOSE_FILE, 'utf8').then((text) => {
      expect(text).toMatch(/#\s+capabilities: \[gpu\]/);
    });
  });

  it('takes every credential from the environment (.env), none written inline', async () => {
    const secretName = /PASS|PASSWORD|SECRET|TOKEN|ACCESS_KEY|PSEUDONYM_KEY/;
    const inline: string[] = [];
    for (const [name, service] of Object.entries(raw.services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (secretName.test(key) && !/^\$\{[A-Z_]+(:[-?][^}]*)?\}$/.test(String(value)))
          inline.push(`${name}.${key}=${String(value)}`);
      }
    }
    expect(inline).toEqual([]);
    // Every secret compose insists on is in .env.example, to be filled in.
    const compose = await readFile(COMPOSE_FILE, 'utf8');
    const required = new Set([...compose.matchAll(/\$\{([A-Z_]+):\?/g)].map((match) => match[1]));
    const example = await readFile(join(ROOT, '.env.example'), 'utf8');
    for (const name of required) expect(example).toMatch(new RegExp(`^${String(name)}=`, 'm'));
    expect(required.size).toBeGreaterThanOrEqual(4);
  });
});

describe('Dockerfile', () => {
  it('copies the manifest of every workspace, runs as a non-root user on Node 24 slim', async () => {
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const { workspaces } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      workspaces: string[];
    };
    for (const workspace of workspaces) {
      expect(dockerfile).toContain(`COPY ${workspace}/package.json ${workspace}/`);
    }
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-slim$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^COPY scripts\/ensure-buckets\.mjs scripts\/$/m);
  });
});

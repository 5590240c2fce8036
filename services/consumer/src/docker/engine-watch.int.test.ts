import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorKind } from '@dicomflow/runtime';
import { buildTestModelImage } from '@dicomflow/test-helpers';
import { checkEngineStayedUp } from './engine-watch.js';

const SLEEP_MODEL = { name: 'engine-watch-sleep', script: 'sleep 600\n' };
const FAST = { settleMs: 600, pollMs: 100 };

/**
 * A Unix socket that forwards to the engine's and can be shut, so that the engine "goes away" for the
 * client that uses it while the real engine (shared by other tests) keeps running.
 */
class EngineDoor {
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly path: string,
  ) {}

  static async open(dir: string): Promise<EngineDoor> {
    const path = join(dir, 'engine.sock');
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      const engine = connect('/var/run/docker.sock');
      sockets.add(client).add(engine);
      client.pipe(engine).pipe(client);
      const drop = (): void => {
        client.destroy();
        engine.destroy();
      };
      client.on('error', drop).on('close', drop);
      engine.on('error', drop).on('close', drop);
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return new EngineDoor(server, sockets, path);
  }

  async shut(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

describe('consumer: a model ended by the engine going down is not the model failing', () => {
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  let image: string;
  let dir: string;
  const containers: Docker.Container[] = [];

  beforeAll(async () => {
    image = await buildTestModelImage(SLEEP_MODEL);
    dir = await mkdtemp(join(tmpdir(), 'dicomflow-engine-watch-'));
  });

  afterAll(async () => {
    for (const container of containers) await container.remove({ force: true }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts a sleeping container, kills it with SIGKILL and returns it with its exit code. */
  async function killedContainer(client: Docker): Promise<{ container: Docker.Container; exitCode: number }> {
    const created = await docker.createContainer({
      Image: image,
      Labels: { 'dicomflow.test': 'engine-watch' },
    });
    containers.push(created);
    await created.start();
    const waiting = created.wait() as Promise<{ StatusCode: number }>;
    await created.kill({ signal: 'SIGKILL' });
    const { StatusCode } = await waiting;
    return { container: client.getContainer(created.id), exitCode: StatusCode };
  }

  it("keeps exit code 137 as the model's own while the engine keeps answering", async () => {
    const { container, exitCode } = await killedContainer(docker);
    expect(exitCode).toBe(137);
    await expect(checkEngineStayedUp(docker, container, exitCode, FAST)).resolves.toBeUndefined();
  });

  it('turns exit code 137 into a transient failure when the engine stops answering right after', async () => {
    const door = await EngineDoor.open(dir);
    const client = new Docker({ socketPath: door.path });
    const { container, exitCode } = await killedContainer(client);
    const check = checkEngineStayedUp(client, container, exitCode, FAST);
    // The engine goes down moments after it stopped the container, as it does on a restart.
    setTimeout(() => void door.shut(), 150);
    const err = await check.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(errorKind(err)).toBe('transient');
    expect(String(err)).toContain('the Docker engine stopped while the model ran');
  });

  it('does not ask the engine at all for an ordinary exit code', async () => {
    const unreachable = new Docker({ socketPath: join(dir, 'nothing-here.sock') });
    await expect(
      checkEngineStayedUp(unreachable, unreachable.getContainer('none'), 1, FAST),
    ).resolves.toBeUndefined();
  });
});

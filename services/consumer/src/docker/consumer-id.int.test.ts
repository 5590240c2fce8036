// The consumer's default id against a real Docker engine: a container's name when the host name is that
// container's id (what Docker and compose give a container), the host name otherwise.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { ensureTestBaseImage } from '@dicomflow/test-helpers';
import { defaultConsumerId } from './consumer-id.js';
import { createDockerClient } from './docker-client.js';

const docker = createDockerClient(process.env.DOCKER_HOST ?? '');
const name = `dicomflow-test-consumer-${randomBytes(4).toString('hex')}_1`;
let container: Docker.Container;

beforeAll(async () => {
  const image = await ensureTestBaseImage();
  container = await docker.createContainer({ Image: image, name, Cmd: ['true'] });
});

afterAll(async () => {
  await container.remove({ force: true });
});

describe('defaultConsumerId', () => {
  it("is the container's name when the host name is its id, short or long", async () => {
    expect(await defaultConsumerId(docker, container.id.slice(0, 12))).toBe(name);
    expect(await defaultConsumerId(docker, container.id)).toBe(name);
  });

  it('is the host name when no container has it as id, or when it is not an id at all', async () => {
    expect(await defaultConsumerId(docker, 'abcdef012345')).toBe('abcdef012345');
    // A container may be named like a host: a name is not an id, so the host name stays.
    expect(await defaultConsumerId(docker, name)).toBe(name);
    expect(await defaultConsumerId(docker, 'gpu-node-1')).toBe('gpu-node-1');
  });

  it('is the host name when the engine cannot be reached', async () => {
    const gone = createDockerClient('unix:///nonexistent/docker.sock');
    expect(await defaultConsumerId(gone, container.id.slice(0, 12))).toBe(container.id.slice(0, 12));
  });
});

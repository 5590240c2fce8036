import { hostname } from 'node:os';
import type Docker from 'dockerode';
import type { ConsumerConfig } from '@dicomflow/config';
import { createDockerClient } from './docker-client.js';

/** How long the engine gets to say whether this host name is one of its containers. */
const LOOKUP_TIMEOUT_MS = 5_000;

/**
 * The consumer's id when CONSUMER_ID is empty. In a container the host name is, by default, the
 * container's short id, which changes whenever compose recreates the container: what the earlier life
 * left (containers and job folders, named by the old id) would never be claimed and removed. The
 * container's name (`<project>_consumer_<n>` with compose v1, `<project>-consumer-<n>` with v2) stays the
 * same per replica, so it is the id when the engine knows a container whose id starts with this host name;
 * anywhere else (a host, a host name set by hand) the host name is already stable and is the id.
 */
export async function defaultConsumerId(
  docker: Pick<Docker, 'getContainer'>,
  host: string = hostname(),
): Promise<string> {
  if (!/^[0-9a-f]{12,64}$/.test(host)) return host;
  let timer: NodeJS.Timeout | undefined;
  try {
    const info = await Promise.race([
      docker.getContainer(host).inspect(),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          reject(new Error('the Docker engine did not answer'));
        }, LOOKUP_TIMEOUT_MS);
      }),
    ]);
    const name = info.Name.replace(/^\//, '');
    return info.Id.startsWith(host) && name !== '' ? name : host;
  } catch {
    // Not a container of this engine (a remote engine, or the engine is down): the host name it is.
    return host;
  } finally {
    clearTimeout(timer);
  }
}

/** `config` with CONSUMER_ID filled in by {@link defaultConsumerId} when it is empty. */
export async function withConsumerId(config: ConsumerConfig): Promise<ConsumerConfig> {
  if (config.CONSUMER_ID !== '') return config;
  return { ...config, CONSUMER_ID: await defaultConsumerId(createDockerClient(config.DOCKER_HOST)) };
}

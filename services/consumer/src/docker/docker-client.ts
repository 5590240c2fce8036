import Docker from 'dockerode';

/**
 * A Docker client for DOCKER_HOST: empty = the default local socket, `unix:///path`, or `tcp://host:port`
 * (plain HTTP; put TLS in front with a socket proxy).
 */
export function createDockerClient(dockerHost: string): Docker {
  if (dockerHost === '') return new Docker({ socketPath: '/var/run/docker.sock' });
  const url = new URL(dockerHost);
  if (url.protocol === 'unix:') return new Docker({ socketPath: url.pathname });
  if (url.protocol === 'tcp:' || url.protocol === 'http:') {
    return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
  }
  throw new Error(`DOCKER_HOST "${dockerHost}": use unix:///path or tcp://host:port`);
}

import type Docker from 'dockerode';
import type { Logger } from '@dicomflow/runtime';
import { CONSUMER_LABEL, ROLE_LABEL, RUN_LABEL, STEP_LABEL } from './create-options.js';
import { removeContainer } from './containers.js';

/**
 * Removes the containers a previous life of this consumer left behind (it was killed mid-job): every
 * container labelled with its id. Consumers sharing an engine have distinct ids (CONSUMER_ID), so none
 * touches another's containers. Returns how many were removed.
 */
export async function removeLeftoverContainers(
  docker: Docker,
  consumerId: string,
  logger: Logger,
): Promise<number> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${CONSUMER_LABEL}=${consumerId}`] },
  });
  let removed = 0;
  for (const info of containers) {
    if (await removeContainer(docker, info.Id)) removed++;
    logger.info(
      {
        container: info.Names[0],
        role: info.Labels[ROLE_LABEL],
        runId: info.Labels[RUN_LABEL],
        step: info.Labels[STEP_LABEL],
      },
      'removed a container left behind by an earlier run of this consumer',
    );
  }
  return removed;
}

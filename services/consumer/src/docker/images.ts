import type Docker from 'dockerode';
import type { Logger } from '@dicomflow/runtime';
import { JobFailure } from '../jobs/job-failure.js';
import { asTransientDockerError, dockerMessage, isNotFound } from './docker-errors.js';

async function isPresent(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw asTransientDockerError(err, 'inspecting the image');
  }
}

async function pull(docker: Docker, image: string): Promise<void> {
  const stream = await docker.pull(image);
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, events: readonly { error?: string }[]) => {
      const failed = events.find((event) => event.error !== undefined);
      if (err) reject(err);
      else if (failed?.error !== undefined) reject(new Error(failed.error));
      else resolve();
    });
  });
}

/**
 * Makes sure `image` is on the engine: pulled first when the model asks (`pull_before_exec`; a failed pull
 * of an image present locally runs that one, with a warning), else pulled only when absent. An image that
 * is neither pullable nor present fails the job with reason `image`.
 */
export async function ensureImage(
  docker: Docker,
  image: string,
  pullFirst: boolean,
  logger: Logger,
): Promise<void> {
  if (!pullFirst && (await isPresent(docker, image))) return;
  try {
    await pull(docker, image);
    return;
  } catch (err) {
    if (await isPresent(docker, image)) {
      logger.warn({ image, err: dockerMessage(err) }, 'pulling the image failed; running the local copy');
      return;
    }
    throw new JobFailure(
      'image',
      `image ${image} cannot be pulled and is not present: ${dockerMessage(err)}`,
    );
  }
}

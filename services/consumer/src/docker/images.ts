import type Docker from 'dockerode';
import type { Logger } from '@dicomflow/runtime';
import { JobFailure } from '../jobs/job-failure.js';
import { asTransientDockerError, dockerMessage, isNotFound } from './docker-errors.js';

/** What the engine says about the image a job runs: its identity (for provenance) and its user. */
export interface ImageFacts {
  /** The image id (`sha256:...`), the digest of its configuration: what ran, whatever the tag says later. */
  readonly id: string;
  /** `name@sha256:...` for each registry the image came from; empty for an image built locally. */
  readonly repoDigests: readonly string[];
  /** The user its configuration runs as; empty means root. */
  readonly user: string;
}

async function inspectIfPresent(docker: Docker, image: string): Promise<ImageFacts | undefined> {
  try {
    const info = await docker.getImage(image).inspect();
    // The engine omits both for some images, whatever dockerode's types say.
    const repoDigests: unknown = info.RepoDigests;
    const user: unknown = info.Config.User;
    return {
      id: info.Id,
      repoDigests: Array.isArray(repoDigests) ? (repoDigests as string[]) : [],
      user: typeof user === 'string' ? user : '',
    };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw asTransientDockerError(err, 'inspecting the image');
  }
}

async function inspectPresent(docker: Docker, image: string): Promise<ImageFacts> {
  const facts = await inspectIfPresent(docker, image);
  if (facts) return facts;
  throw new JobFailure('image', `image ${image} is not present after it was pulled`);
}

/** True when a container of an image with this configured user runs as root. */
export function runsAsRoot(user: string): boolean {
  const name = user.split(':')[0] ?? '';
  return name === '' || name === 'root' || name === '0';
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
 * is neither pullable nor present fails the job with reason `image`. Resolves with what the engine says
 * about the image that will run.
 */
export async function ensureImage(
  docker: Docker,
  image: string,
  pullFirst: boolean,
  logger: Logger,
): Promise<ImageFacts> {
  if (!pullFirst) {
    const present = await inspectIfPresent(docker, image);
    if (present) return present;
  }
  try {
    await pull(docker, image);
    return await inspectPresent(docker, image);
  } catch (err) {
    if (err instanceof JobFailure) throw err;
    const present = await inspectIfPresent(docker, image);
    if (present) {
      logger.warn({ image, err: dockerMessage(err) }, 'pulling the image failed; running the local copy');
      return present;
    }
    throw new JobFailure(
      'image',
      `image ${image} cannot be pulled and is not present: ${dockerMessage(err)}`,
    );
  }
}

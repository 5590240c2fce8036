import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import type { Logger } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';
import { CONSUMER_LABEL, ROLE_LABEL, type StaticVolumeMount } from '../docker/create-options.js';
import { removeContainer } from '../docker/containers.js';
import { asTransientDockerError, dockerMessage, isNotFound } from '../docker/docker-errors.js';
import { JobFailure } from '../jobs/job-failure.js';
import { releaseResponse } from './input-tar.js';

/** Label of static volumes: the sha256 of the tar they hold. */
export const STATIC_SHA_LABEL = 'dicomflow.static.sha256';
const SHA256 = /^[0-9a-f]{64}$/;
const FILL_PATH = '/dicomflow-static';

/** The volume holding static content with this hash, and the marker volume saying it is complete. */
export function staticVolumeNames(sha256: string): { volume: string; ready: string } {
  return { volume: `dicomflow-static-${sha256}`, ready: `dicomflow-static-${sha256}.ready` };
}

/** Parses a model's `static_mounts` entry ("name:/path"). */
export function parseStaticMount(entry: string): { name: string; target: string } {
  const at = entry.indexOf(':');
  return { name: entry.slice(0, at), target: entry.slice(at + 1) };
}

/**
 * Static content (model weights) in Docker named volumes, one per content hash: the tar `<name>.tar` of the
 * static bucket (S3 metadata `sha256`, written by static-storage) is fetched once into
 * `dicomflow-static-<sha256>`, and every later run with the same hash mounts that volume read-only. A marker
 * volume is created once the copy is complete and its hash checked, so a copy cut short is redone.
 */
export class StaticVolumes {
  readonly #filling = new Map<string, Promise<void>>();
  /** How many times content was copied from S3 (the tests check that a shared hash is fetched once). */
  fetches = 0;

  constructor(
    private readonly deps: {
      readonly docker: Docker;
      readonly storage: Pick<Storage, 'stat' | 'getStream'>;
      readonly bucket: string;
      readonly consumerId: string;
      readonly logger: Logger;
      readonly onFetch?: (bytes: number) => void;
    },
  ) {}

  /**
   * The volumes to mount for `mounts` ("name:/path"), fetching content not yet on this engine. `image`
   * (present locally) serves as the never-started helper container the copy goes through.
   */
  async prepare(mounts: readonly string[], image: string): Promise<StaticVolumeMount[]> {
    const result: StaticVolumeMount[] = [];
    for (const entry of mounts) {
      const { name, target } = parseStaticMount(entry);
      const sha256 = await this.#hashOf(name);
      await this.#ensure(name, sha256, image);
      result.push({ volume: staticVolumeNames(sha256).volume, target });
    }
    return result;
  }

  async #hashOf(name: string): Promise<string> {
    const key = `${name}.tar`;
    const info = await this.deps.storage.stat(this.deps.bucket, key);
    if (!info)
      throw new JobFailure('input', `static content "${name}" does not exist (${this.deps.bucket}/${key})`);
    const sha256 = info.metadata.sha256?.toLowerCase();
    if (sha256 === undefined || !SHA256.test(sha256))
      throw new JobFailure('input', `static content "${name}" has no sha256 metadata`);
    return sha256;
  }

  /** One copy per hash at a time in this process; other consumers on the engine may copy the same bytes. */
  async #ensure(name: string, sha256: string, image: string): Promise<void> {
    let filling = this.#filling.get(sha256);
    if (!filling) {
      filling = this.#fillUnlessReady(name, sha256, image).finally(() => this.#filling.delete(sha256));
      this.#filling.set(sha256, filling);
    }
    await filling;
  }

  async #fillUnlessReady(name: string, sha256: string, image: string): Promise<void> {
    const { docker } = this.deps;
    const names = staticVolumeNames(sha256);
    // Both: a volume removed by hand behind its marker would otherwise be mounted as a new, empty one.
    if ((await volumeExists(docker, names.ready)) && (await volumeExists(docker, names.volume))) return;
    const labels = { [STATIC_SHA_LABEL]: sha256, 'dicomflow.static.name': name };
    let helper: Docker.Container | undefined;
    try {
      await docker.createVolume({ Name: names.volume, Labels: labels });
      helper = await docker.createContainer({
        Image: image,
        Labels: { [CONSUMER_LABEL]: this.deps.consumerId, [ROLE_LABEL]: 'static-fill' },
        NetworkDisabled: true,
        HostConfig: {
          NetworkMode: 'none',
          Mounts: [{ Type: 'volume', Source: names.volume, Target: FILL_PATH, ReadOnly: false }],
        },
      });
      const source = await this.deps.storage.getStream(this.deps.bucket, `${name}.tar`);
      const hashed = hashing(source);
      releaseResponse(await helper.putArchive(hashed.stream, { path: FILL_PATH }));
      const actual = hashed.digest();
      if (actual !== sha256) {
        await removeContainer(docker, helper.id).catch(() => undefined);
        await docker
          .getVolume(names.volume)
          .remove()
          .catch(() => undefined);
        throw new JobFailure('input', `static content "${name}" does not match its sha256 (got ${actual})`);
      }
      this.fetches++;
      this.deps.onFetch?.(hashed.bytes());
      await docker.createVolume({ Name: names.ready, Labels: labels });
      this.deps.logger.info({ name, sha256, bytes: hashed.bytes() }, 'static content copied into a volume');
    } catch (err) {
      if (err instanceof JobFailure) throw err;
      const kind = (err as { kind?: unknown }).kind;
      if (kind === 'gone')
        throw new JobFailure('input', `static content "${name}" disappeared while copying`);
      if (kind !== undefined) throw err;
      throw asTransientDockerError(err, `copying static content "${name}": ${dockerMessage(err)}`);
    } finally {
      if (helper) await removeContainer(docker, helper.id).catch(() => undefined);
    }
  }
}

function hashing(source: Readable): { stream: Readable; digest: () => string; bytes: () => number } {
  const hash = createHash('sha256');
  let total = 0;
  let digest: string | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      total += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      digest = hash.digest('hex');
      done();
    },
  });
  pipeline(source, stream).catch((err: unknown) => stream.destroy(err as Error));
  return { stream, digest: () => digest ?? 'incomplete', bytes: () => total };
}

async function volumeExists(docker: Docker, name: string): Promise<boolean> {
  try {
    await docker.getVolume(name).inspect();
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw asTransientDockerError(err, 'inspecting a static volume');
  }
}

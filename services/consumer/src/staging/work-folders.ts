import { createHash, randomUUID } from 'node:crypto';
import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { TransientError, type Logger } from '@dicomflow/runtime';
import type { Job } from '@dicomflow/messages';

/** A job's folders in the work folder, as the consumer and as the Docker engine's host see them. */
export interface JobFolder {
  /** `<work>/<consumer>/<runId>-<step>-<random>` as the consumer sees it. */
  readonly path: string;
  readonly input: string;
  readonly output: string;
  /** The same input and output folders as the Docker engine's host sees them (the bind sources). */
  readonly hostInput: string;
  readonly hostOutput: string;
}

/** Where the work folder is and whose jobs are in it. */
export interface WorkFoldersOptions {
  /** CONSUMER_WORK_DIR: the folder as this consumer sees it. */
  readonly dir: string;
  /** CONSUMER_WORK_DIR_HOST: the same folder as the engine's host sees it (empty = `dir`). */
  readonly hostDir: string;
  readonly consumerId: string;
  readonly logger: Logger;
}

/**
 * The consumer id as a folder name: kept as it is when it is a plain name, otherwise made safe and
 * suffixed with a hash of the id, so two ids never share a folder.
 */
export function consumerFolderName(consumerId: string): string {
  if (/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(consumerId) && consumerId.length <= 128) return consumerId;
  const safe = consumerId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  return `${safe}-${createHash('sha256').update(consumerId).digest('hex').slice(0, 12)}`;
}

/**
 * The job folders of one consumer in the work folder shared with the Docker engine (CONSUMER_WORK_DIR):
 * `<work>/<consumer id>/<runId>-<step>-<random>/{input,output}`. The consumer id in the path is what lets a
 * restarted consumer remove the folders its earlier life left (as it removes its containers), never those
 * of another consumer sharing the folder.
 */
export class WorkFolders {
  readonly consumerDir: string;
  readonly #hostConsumerDir: string;
  readonly #logger: Logger;

  constructor(options: WorkFoldersOptions) {
    const folder = consumerFolderName(options.consumerId);
    this.consumerDir = join(options.dir, folder);
    this.#hostConsumerDir = posix.join(options.hostDir || options.dir, folder);
    this.#logger = options.logger;
  }

  /**
   * Creates the job's folder: `input` readable and `output` writable by any user (a model need not run as
   * the consumer's user). The random part keeps two attempts of one job apart.
   */
  async create(job: Pick<Job, 'runId' | 'step'>): Promise<JobFolder> {
    const name = `${job.runId.replace(/[^A-Za-z0-9_-]/g, '_')}-${job.step}-${randomUUID().slice(0, 8)}`;
    const path = join(this.consumerDir, name);
    const folder: JobFolder = {
      path,
      input: join(path, 'input'),
      output: join(path, 'output'),
      hostInput: posix.join(this.#hostConsumerDir, name, 'input'),
      hostOutput: posix.join(this.#hostConsumerDir, name, 'output'),
    };
    try {
      await mkdir(this.consumerDir, { recursive: true, mode: 0o755 });
      await mkdir(path, { mode: 0o755 });
      await mkdir(folder.input, { mode: 0o755 });
      await mkdir(folder.output, { mode: 0o777 });
      // mkdir's mode passes through the umask; these are the modes the model needs.
      await chmod(path, 0o755);
      await chmod(folder.input, 0o755);
      await chmod(folder.output, 0o777);
    } catch (err) {
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
      throw new TransientError(`cannot create the job folder ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return folder;
  }

  /**
   * Removes a job folder with everything in it, also what the container wrote as another user (the
   * consumer must be allowed to: it runs as root, see the README). A failure is logged, not thrown: the
   * next start of this consumer removes the folder.
   */
  async remove(folder: Pick<JobFolder, 'path'>): Promise<void> {
    try {
      await rm(folder.path, { recursive: true, force: true, maxRetries: 2 });
    } catch (err) {
      this.#logger.warn(
        { folder: folder.path, err: (err as Error).message },
        'cannot remove the job folder; the next start of this consumer removes it',
      );
    }
  }

  /** Removes every job folder an earlier life of this consumer left (it was killed mid-job). */
  async removeLeftovers(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.consumerDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    for (const name of names) {
      await rm(join(this.consumerDir, name), { recursive: true, force: true, maxRetries: 2 });
      this.#logger.info(
        { folder: join(this.consumerDir, name) },
        'removed a job folder left behind by an earlier run of this consumer',
      );
    }
    return names.length;
  }
}

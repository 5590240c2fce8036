import { reportDeletions, type Deletions, type JanitorCounter, type Logger } from '@dicomflow/runtime';
import { abortStaleUploads, type Storage } from '@dicomflow/storage';

/** What a janitor pass works with. */
export interface UploadJanitorDeps {
  readonly storage: Storage;
  readonly bucket: string;
  /** Age, in seconds, after which an incomplete upload is aborted; 0 keeps them. */
  readonly retention: number;
  readonly counter: JanitorCounter;
  readonly logger: Logger;
}

/**
 * Aborts the multipart uploads of the static bucket left incomplete for longer than the retention age
 * (an upload or a folder sync cut short by a crash), so their parts stop taking space. Counted as
 * `kind="uploads"` and logged.
 */
export async function runJanitorOnce(deps: UploadJanitorDeps): Promise<Deletions> {
  if (deps.retention === 0) return {};
  const aborted = await abortStaleUploads(
    deps.storage,
    deps.bucket,
    new Date(Date.now() - deps.retention * 1000),
  );
  const deletions = { uploads: aborted };
  reportDeletions(deletions, deps.counter, deps.logger);
  return deletions;
}

import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { reportDeletions, type Deletions, type JanitorCounter, type Logger } from '@dicomflow/runtime';
import type { Spool } from './spool.js';

/** What a janitor pass works with. */
export interface SpoolJanitorDeps {
  readonly spool: Spool;
  /** Age, in seconds, after which a leftover goes; 0 keeps leftovers. */
  readonly retention: number;
  readonly counter: JanitorCounter;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/**
 * Removes leftovers from the spool: entries of incoming/ and groups/ that no association or group of this
 * process uses (the spool knows every path it handed out or took over at start) and that were not modified
 * for the retention age. Such entries come from removals that failed (a group already published, a refused
 * instance) or from a group folder whose creation failed half-way. An open group, or one waiting to be
 * published, is in use however old it is: its instances were acknowledged to the sender. Nothing is done
 * before the spool's start-up recovery: until then every group left by a previous process looks unused.
 * Deletions are counted (`kind="spool"`) and logged.
 */
export async function runJanitorOnce(deps: SpoolJanitorDeps): Promise<Deletions> {
  const { spool } = deps;
  if (deps.retention === 0 || !spool.recovered) return {};
  const before = Date.now() - deps.retention * 1000;
  let removed = 0;
  for (const dir of [spool.incomingDir, spool.groupsDir]) {
    for (const name of await readdir(dir).catch(() => [])) {
      if (deps.signal?.aborted === true) break;
      const path = join(dir, name);
      if (spool.inUse(path)) continue;
      const info = await lstat(path).catch(() => undefined);
      // Asked again after the await: a group created meanwhile is in use from before its folder exists.
      if (!info || info.mtimeMs >= before || spool.inUse(path)) continue;
      await rm(path, { recursive: true, force: true });
      removed++;
    }
  }
  const deletions = { spool: removed };
  reportDeletions(deletions, deps.counter, deps.logger);
  return deletions;
}

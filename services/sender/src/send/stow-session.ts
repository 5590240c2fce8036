import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import type { DicomWebSendTarget } from '@dicomflow/messages';
import type { Logger } from '@dicomflow/runtime';
import { readBearerToken, type TokenSource } from './bearer-token.js';
import type { OutputInstance } from './output-feed.js';
import { postStow, stowAgent, stowEndpoint } from './stow-client.js';
import { StowError } from './stow-error.js';
import { judgeStowAnswer } from './stow-response.js';
import type { TargetQueue } from './target-queue.js';
import type { InstanceReport, TargetSession } from './target-session.js';

/** How the sender talks to DICOMweb servers (SENDER_TOKEN_DIR, SEND_STOW_BATCH_*). */
export interface StowSettings {
  readonly tokenDir: string;
  /** PEM file of CA certificates trusted for https servers besides the default ones; '' for none. */
  readonly caFile: string;
  /** Most instances per request. */
  readonly batchInstances: number;
  /** Most file bytes per request (a larger instance goes alone). */
  readonly batchBytes: number;
}

/** What the requests of a DICOMweb server need. */
export interface StowSessionDeps {
  readonly stow: StowSettings;
  /** The destination's token or token_file; absent: requests go without Authorization. */
  readonly credentials?: TokenSource;
  readonly retry: { readonly timeoutMs: number };
  readonly signal: AbortSignal;
  /** Gets a debug line per request (instances, bytes, HTTP status, time taken). */
  readonly logger: Logger;
}

/**
 * Sends to a DICOMweb server with STOW-RS: each {@link send} posts what the queue has at hand in batches
 * (at most `batchInstances` instances and `batchBytes` bytes each, in queue order) until nothing is left at
 * hand, then returns; what the download brings later goes in the next requests. The token is read at the
 * start of each round. One keep-alive connection serves the target's requests.
 */
export class StowSession implements TargetSession {
  readonly #endpoint: URL;
  /** Made by the first round (it may have to read the CA file). */
  #agent: http.Agent | undefined;

  constructor(
    target: DicomWebSendTarget,
    private readonly deps: StowSessionDeps,
  ) {
    this.#endpoint = stowEndpoint(target.url);
  }

  async send(queue: TargetQueue, report: InstanceReport): Promise<void> {
    const token = await readBearerToken(this.deps.credentials ?? {}, this.deps.stow.tokenDir);
    this.#agent ??= stowAgent(this.#endpoint, await readCaFile(this.#endpoint, this.deps.stow.caFile));
    const agent = this.#agent;
    for (;;) {
      if (this.deps.signal.aborted) throw new Error('the sender is stopping');
      const batch = takeBatch(queue, this.deps.stow);
      if (batch.length === 0) return;
      let verdict;
      const startedAt = performance.now();
      try {
        const answer = await postStow({
          endpoint: this.#endpoint,
          files: batch.map((instance) => instance.file),
          ...(token === undefined ? {} : { token }),
          timeoutMs: this.deps.retry.timeoutMs,
          signal: this.deps.signal,
          agent,
        });
        verdict = judgeStowAnswer(
          answer,
          batch.map((instance) => instance.file),
        );
        this.deps.logger.debug(
          {
            instances: batch.length,
            bytes: batch.reduce((sum, instance) => sum + instance.file.size, 0),
            status: answer.status,
            ms: Math.round(performance.now() - startedAt),
          },
          'STOW-RS request answered',
        );
      } catch (err) {
        queue.putBack(batch);
        throw err;
      }
      const where = `STOW-RS to ${this.#endpoint.href}`;
      if (verdict.kind === 'transient') {
        queue.putBack(batch);
        throw new StowError(`${where}: ${verdict.message}`, { transient: true, code: verdict.code });
      }
      if (verdict.kind === 'permanent')
        throw new StowError(`${where}: ${verdict.message}`, {
          transient: false,
          code: verdict.code,
          reason: 'rejected',
        });
      for (const [n, instance] of batch.entries()) {
        const v = verdict.verdicts[n];
        if (v === undefined) report.onRefused(instance, undefined, `${where}: no verdict for the instance`);
        else if (v.kind === 'stored') await report.onStored(instance, v.status);
        else if (v.kind === 'deferred') report.onDeferred(instance, v.status, v.message);
        else report.onRefused(instance, v.status, v.message);
      }
    }
  }

  close(): void {
    this.#agent?.destroy();
  }
}

/** The extra CAs for an https server (SEND_TLS_CA_FILE); a file that cannot be read fails the target. */
async function readCaFile(endpoint: URL, caFile: string): Promise<string | undefined> {
  if (endpoint.protocol !== 'https:' || caFile === '') return undefined;
  try {
    return await readFile(caFile, 'utf8');
  } catch (err) {
    throw new StowError(
      `SEND_TLS_CA_FILE ${caFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      { transient: false, code: 'tls-ca', reason: 'error', cause: err },
    );
  }
}

/**
 * The next instances to post: those at hand in queue order, up to the batch limits; an instance larger
 * than `batchBytes` goes alone. Never waits for the download.
 */
export function takeBatch(
  queue: Pick<TargetQueue, 'peek' | 'take'>,
  limits: Pick<StowSettings, 'batchInstances' | 'batchBytes'>,
): OutputInstance[] {
  const batch: OutputInstance[] = [];
  let bytes = 0;
  for (let next = queue.peek(); next !== undefined; next = queue.peek()) {
    if (batch.length >= limits.batchInstances) break;
    if (batch.length > 0 && bytes + next.file.size > limits.batchBytes) break;
    batch.push(queue.take());
    bytes += next.file.size;
  }
  return batch;
}

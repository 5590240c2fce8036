import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  formatDeliveredLine,
  sendTargetText,
  type ObjectLocation,
  type SendTarget,
} from '@dicomflow/messages';
import { errorKind, TransientError } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';
import type { AckStore } from '../db/ack-store.js';

/** Where a delivery's manifest goes in the output bucket: one per delivery (the run's own, each resend). */
export function deliveredManifestKey(runId: string, resendId?: string): string {
  return resendId === undefined ? `${runId}/delivered.jsonl` : `${runId}/delivered-${resendId}.jsonl`;
}

/** What writing a delivered manifest needs. */
export interface DeliveredManifestDeps {
  readonly storage: Pick<Storage, 'putFile'>;
  readonly acks: Pick<AckStore, 'ackedUids'>;
}

/**
 * Writes the delivered manifest of a delivery every target acknowledged: one line per instance and target
 * (JSON Lines, `readDeliveredLines` in @dicomflow/messages), read from the acknowledgements page by page
 * into a file in `scratchDir`, then uploaded beside the run's outputs. `send.finished` names it, so the
 * tracker learns which instance went where without any list in a message. S3 failing is a TransientError
 * (the delivery is retried; nothing is sent again, the acknowledgements are kept).
 */
export async function writeDeliveredManifest(
  deps: DeliveredManifestDeps,
  delivery: {
    readonly runId: string;
    readonly resendId?: string | undefined;
    readonly bucket: string;
    readonly targets: readonly { readonly target: SendTarget; readonly key: string }[];
  },
  scratchDir: string,
): Promise<ObjectLocation> {
  const key = deliveredManifestKey(delivery.runId, delivery.resendId);
  const file = join(scratchDir, 'delivered.jsonl');
  async function* lines(): AsyncGenerator<string, void, undefined> {
    for (const { target, key: ackKey } of delivery.targets) {
      const text = sendTargetText(target);
      for await (const uids of deps.acks.ackedUids(delivery.runId, ackKey))
        yield uids.map((sopInstanceUid) => formatDeliveredLine({ sopInstanceUid, target: text })).join('');
    }
  }
  try {
    // The spool folder of an output with nothing to send may never have been made.
    await mkdir(scratchDir, { recursive: true });
    await pipeline(Readable.from(lines()), createWriteStream(file));
    await deps.storage.putFile(delivery.bucket, key, file);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (errorKind(err) === 'permanent') throw err;
    throw new TransientError(`cannot store the delivered manifest ${key}: ${reason}`, { cause: err });
  } finally {
    await rm(file, { force: true });
  }
  return { bucket: delivery.bucket, key };
}

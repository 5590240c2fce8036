import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createTarStream, tarMemberName, tarSize } from '@dicomflow/dicom';
import type { TarFileEntry } from '@dicomflow/dicom';
import type { Broker } from '@dicomflow/broker';
import {
  formatReceiptIndexHeader,
  formatReceiptIndexInstance,
  type StudyReceived,
} from '@dicomflow/messages';
import { inSpan, startSpan } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';
import type { SealedGroup } from '../spool/grouper.js';
import type { EarlyReceiptUploads } from './early-upload.js';
import { MemberNames } from './member-names.js';
import { receiptKeys } from './receipt-keys.js';
import type { Spool } from '../spool/spool.js';

/** What publishing a receipt needs. */
export interface PublishReceiptDeps {
  readonly spool: Spool;
  readonly storage: Pick<Storage, 'putStream' | 'putBuffer' | 'stat'>;
  readonly broker: Pick<Broker, 'publish'>;
  readonly bucket: string;
  readonly tarSubdir: readonly string[];
  /** Asked per spooled file whether to read it synchronously (see createTarStream); default yes. */
  readonly readInline?: () => boolean;
  /** Receipt tars uploaded while their groups were open: publishing only completes them. */
  readonly early?: Pick<EarlyReceiptUploads, 'finish' | 'drop'>;
}

/** The receipt's index lines, written in the group folder while the receipt is built (not a .dcm file). */
const INDEX_LINES_FILE = 'receipt-index.lines';

/**
 * Publishes one sealed group, once: tar and index to S3, then `study.received` (confirmed), then the spool
 * copy is removed. Safe to repeat after a crash at any step: the keys and the receipt id stay the same, so a
 * second run overwrites the same objects and downstream consumers drop the repeated message by receipt id.
 * Returns undefined when the group holds no instance.
 *
 * The tar usually went up while the group was open (`early`): then only its last members are sent here.
 *
 * Flat in memory whatever the group's size: the spool's instances are streamed, each one's index line goes
 * to a file in the group folder as it comes, and only the tar entries (name, path, size) and the summary
 * are held; the index is then uploaded from that file.
 */
export async function execPublishReceipt(
  deps: PublishReceiptDeps,
  group: SealedGroup,
): Promise<StudyReceived | undefined> {
  const { manifest, dir } = group;
  const entries: TarFileEntry[] = [];
  const studies = new Map<string, Map<string, { modality: string; count: number }>>();
  const names = new MemberNames();
  const linesPath = join(dir, INDEX_LINES_FILE);
  const lines = createWriteStream(linesPath);
  let linesBytes = 0;
  const spoolSpan = startSpan('spool', { attributes: { 'dicomflow.receipt_id': manifest.receiptId } });
  try {
    for await (const { path, info } of deps.spool.instances(dir)) {
      const member = names.unique(tarMemberName(deps.tarSubdir, info.elements, info.sopInstanceUid));
      entries.push({ name: member, path, size: info.size });
      const line = formatReceiptIndexInstance({
        member,
        size: info.size,
        sopClassUid: info.sopClassUid,
        sopInstanceUid: info.sopInstanceUid,
        studyInstanceUid: info.studyInstanceUid,
        seriesInstanceUid: info.seriesInstanceUid,
        transferSyntaxUid: info.transferSyntaxUid,
        elements: info.elements,
      });
      linesBytes += Buffer.byteLength(line);
      if (!lines.write(line)) await once(lines, 'drain');
      const series =
        studies.get(info.studyInstanceUid) ?? new Map<string, { modality: string; count: number }>();
      studies.set(info.studyInstanceUid, series);
      const entry = series.get(info.seriesInstanceUid) ?? { modality: info.modality, count: 0 };
      entry.count += 1;
      series.set(info.seriesInstanceUid, entry);
    }
  } finally {
    lines.end();
    await finished(lines);
    spoolSpan.setAttribute('dicomflow.instances', entries.length);
    spoolSpan.end();
  }
  if (entries.length === 0) {
    await deps.early?.drop(dir);
    await deps.spool.removeGroup(dir);
    return undefined;
  }

  const { tarKey, indexKey } = receiptKeys(manifest.receiptId);
  const size = tarSize(entries);
  // A retry (the broker was away, or no queue took the message yet) finds the tar already uploaded: the
  // same receipt always gives the same bytes, so it is not sent again.
  await inSpan('receipt upload', { attributes: { 'dicomflow.tar_size': size } }, async (span) => {
    const early = (await deps.early?.finish(dir, entries)) ?? false;
    span.setAttribute('dicomflow.early_upload', early);
    const existing = early ? undefined : await deps.storage.stat(deps.bucket, tarKey);
    if (!early && existing?.size !== size) {
      await deps.storage.putStream(deps.bucket, tarKey, createTarStream(entries, deps.readInline), size);
    }
    const header = Buffer.from(
      formatReceiptIndexHeader({ receiptId: manifest.receiptId, instanceCount: entries.length }),
    );
    await deps.storage.putStream(
      deps.bucket,
      indexKey,
      Readable.from(indexBytes(header, linesPath)),
      header.length + linesBytes,
      { 'content-type': 'application/jsonl' },
    );
  });

  const message: StudyReceived = {
    receiptId: manifest.receiptId,
    receivedAt: new Date().toISOString(),
    grouping: manifest.grouping,
    callingAeTitle: manifest.callingAeTitle,
    calledAeTitle: manifest.calledAeTitle,
    callingHost: manifest.callingHost,
    bucket: deps.bucket,
    tarKey,
    indexKey,
    tarSize: size,
    tarSubdir: [...deps.tarSubdir],
    instanceCount: entries.length,
    studies: [...studies].map(([studyInstanceUid, series]) => ({
      studyInstanceUid,
      series: [...series].map(([seriesInstanceUid, s]) => ({
        seriesInstanceUid,
        modality: s.modality,
        instanceCount: s.count,
      })),
    })),
  };
  await deps.broker.publish('study.received', message, {
    messageId: randomUUID(),
    correlationId: manifest.receiptId,
  });
  await deps.spool.removeGroup(dir);
  return message;
}

/** The index as uploaded: its header line, then the instance lines written to the group folder. */
async function* indexBytes(header: Buffer, linesPath: string): AsyncGenerator<Buffer, void, undefined> {
  yield header;
  for await (const chunk of createReadStream(linesPath, { highWaterMark: 1024 * 1024 }))
    yield chunk as Buffer;
}

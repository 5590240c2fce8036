import { randomUUID } from 'node:crypto';
import { createTarStream, tarMemberName, tarSize } from '@dicomflow/dicom';
import type { TarFileEntry } from '@dicomflow/dicom';
import type { Broker } from '@dicomflow/broker';
import type { ReceiptIndex, StudyReceived } from '@dicomflow/messages';
import type { Storage } from '@dicomflow/storage';
import type { SealedGroup } from '../spool/grouper.js';
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
}

/** Object keys of a receipt inside the incoming bucket. */
export function receiptKeys(receiptId: string): { tarKey: string; indexKey: string } {
  return { tarKey: `${receiptId}.tar`, indexKey: `${receiptId}.index.json` };
}

/**
 * Publishes one sealed group, once: tar and index to S3, then `study.received` (confirmed), then the spool
 * copy is removed. Safe to repeat after a crash at any step: the keys and the receipt id stay the same, so a
 * second run overwrites the same objects and downstream consumers drop the repeated message by receipt id.
 * Returns undefined when the group holds no instance.
 */
export async function execPublishReceipt(
  deps: PublishReceiptDeps,
  group: SealedGroup,
): Promise<StudyReceived | undefined> {
  const { manifest, dir } = group;
  const instances = await deps.spool.instances(dir);
  if (instances.length === 0) {
    await deps.spool.removeGroup(dir);
    return undefined;
  }
  const entries: TarFileEntry[] = [];
  const index: ReceiptIndex = { receiptId: manifest.receiptId, instances: [] };
  const studies = new Map<string, Map<string, { modality: string; count: number }>>();
  const usedNames = new Set<string>();
  for (const { path, info } of instances) {
    let member = tarMemberName(deps.tarSubdir, info.elements, info.sopInstanceUid);
    for (let n = 1; usedNames.has(member); n++) member = member.replace(/(\.\d+)?\.dcm$/, `.${n}.dcm`);
    usedNames.add(member);
    entries.push({ name: member, path, size: info.size });
    index.instances.push({
      member,
      size: info.size,
      sopClassUid: info.sopClassUid,
      sopInstanceUid: info.sopInstanceUid,
      studyInstanceUid: info.studyInstanceUid,
      seriesInstanceUid: info.seriesInstanceUid,
      transferSyntaxUid: info.transferSyntaxUid,
      elements: info.elements,
    });
    const series =
      studies.get(info.studyInstanceUid) ?? new Map<string, { modality: string; count: number }>();
    studies.set(info.studyInstanceUid, series);
    const entry = series.get(info.seriesInstanceUid) ?? { modality: info.modality, count: 0 };
    entry.count += 1;
    series.set(info.seriesInstanceUid, entry);
  }

  const { tarKey, indexKey } = receiptKeys(manifest.receiptId);
  const size = tarSize(entries);
  // A retry (the broker was away, or no queue took the message yet) finds the tar already uploaded: the
  // same receipt always gives the same bytes, so it is not sent again.
  const existing = await deps.storage.stat(deps.bucket, tarKey);
  if (existing?.size !== size) {
    await deps.storage.putStream(deps.bucket, tarKey, createTarStream(entries, deps.readInline), size);
  }
  await deps.storage.putBuffer(deps.bucket, indexKey, JSON.stringify(index), 'application/json');

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

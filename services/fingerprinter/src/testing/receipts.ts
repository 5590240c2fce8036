// Receipt fixtures: hand-built index objects (or ones made from real DICOM files) put into S3 the way
// storescp stores them, and the matching `study.received` bodies.
import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import { inspectPart10File } from '@dicomflow/dicom';
import {
  formatReceiptIndex,
  type ReceiptIndex,
  type ReceiptIndexInstance,
  type StudyReceived,
} from '@dicomflow/messages';
import type { Storage } from '@dicomflow/storage';

/** The few elements the tests match on, by keyword: tag and VR. */
const ELEMENTS = {
  Modality: ['00080060', 'CS'],
  SeriesDescription: ['0008103E', 'LO'],
  StudyDescription: ['00081030', 'LO'],
  ImageType: ['00080008', 'CS'],
  BodyPartExamined: ['00180015', 'CS'],
} as const;

export type FixtureKeyword = keyof typeof ELEMENTS;

let uidCounter = 0;
function uid(): string {
  uidCounter += 1;
  return `1.2.826.0.1.3680043.10.1.${Date.now()}.${process.pid}.${uidCounter}`;
}

/**
 * One instance of a hand-built receipt index with the given element values (a list for multi-valued ones).
 */
export function fixtureInstance(
  member: string,
  values: Partial<Record<FixtureKeyword, string | readonly string[]>>,
): ReceiptIndexInstance {
  const elements: Record<string, unknown> = {};
  for (const [keyword, value] of Object.entries(values) as [FixtureKeyword, string | string[]][]) {
    const [tag, vr] = ELEMENTS[keyword];
    elements[tag] = { vr, Value: Array.isArray(value) ? value : [value] };
  }
  return {
    member,
    size: 1024,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    sopInstanceUid: uid(),
    studyInstanceUid: '1.2.826.0.1.3680043.10.1.1',
    seriesInstanceUid: '1.2.826.0.1.3680043.10.1.2',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    elements,
  };
}

/** The index of a receipt made of real DICOM files, as storescp writes it (members named by file). */
export async function indexOfFiles(
  files: readonly string[],
  receiptId = randomUUID(),
): Promise<ReceiptIndex> {
  const instances: ReceiptIndexInstance[] = [];
  for (const file of files) {
    const info = await inspectPart10File(file);
    instances.push({
      member: `${info.seriesInstanceUid}/${basename(file)}`,
      size: info.size,
      sopClassUid: info.sopClassUid,
      sopInstanceUid: info.sopInstanceUid,
      studyInstanceUid: info.studyInstanceUid,
      seriesInstanceUid: info.seriesInstanceUid,
      transferSyntaxUid: info.transferSyntaxUid,
      elements: info.elements,
    });
  }
  return { receiptId, instances };
}

/**
 * Stores `index` in `bucket` under `<receiptId>.index.jsonl` (JSON Lines, as storescp writes it) and
 * returns the `study.received` that announces it. The tar is not stored: the fingerprinter never reads it.
 */
export async function putReceipt(
  storage: Storage,
  bucket: string,
  index: ReceiptIndex,
  overrides: Partial<StudyReceived> = {},
): Promise<StudyReceived> {
  const indexKey = `${index.receiptId}.index.jsonl`;
  await storage.putBuffer(bucket, indexKey, formatReceiptIndex(index), 'application/jsonl');
  return studyReceivedFor(bucket, index, overrides);
}

/** The `study.received` of a receipt whose index is `index` (stored or not). */
export function studyReceivedFor(
  bucket: string,
  index: ReceiptIndex,
  overrides: Partial<StudyReceived> = {},
): StudyReceived {
  return {
    receiptId: index.receiptId,
    receivedAt: new Date().toISOString(),
    grouping: 'association',
    callingAeTitle: 'MODALITY1',
    calledAeTitle: 'STORESCP',
    callingHost: '127.0.0.1',
    bucket,
    tarKey: `${index.receiptId}.tar`,
    indexKey: `${index.receiptId}.index.jsonl`,
    tarSize: 0,
    tarSubdir: ['SeriesInstanceUID'],
    instanceCount: index.instances.length,
    studies: [],
    ...overrides,
  };
}

import type { DataSource, EntityManager } from 'typeorm';
import { ReceivedInstanceEntity, type StudyReceiptRow } from '../db/entities.js';
import { quotedTable } from './quoted-table.js';

/** One series of a study's manifest. */
export interface SeriesCount {
  seriesInstanceUid: string;
  modality: string;
  instanceCount: number;
}

/**
 * The series of a study over its receipts, each instance counted once per series: a SOP instance that a
 * later receipt brought again is not counted twice. Receipts whose instances are recorded (from their
 * index) count by SOP Instance UID; a receipt without (index unreadable, or recorded before instances
 * were) adds its own counts.
 */
export async function seriesCountsOf(
  source: DataSource | EntityManager,
  studyInstanceUid: string,
  receipts: readonly StudyReceiptRow[],
): Promise<SeriesCount[]> {
  const table = quotedTable(source, ReceivedInstanceEntity);
  const distinct: { receipts: string[]; series: string; n: string }[] = await source.query(
    `SELECT array_agg(DISTINCT receipt_id::text) AS receipts, series_instance_uid AS series,
            count(DISTINCT sop_instance_uid) AS n
     FROM ${table} WHERE study_instance_uid = $1 GROUP BY series_instance_uid`,
    [studyInstanceUid],
  );
  const indexed = new Set(distinct.flatMap((row) => row.receipts));
  const series = new Map<string, SeriesCount>();
  for (const receipt of receipts)
    for (const s of receipt.series) {
      const known = series.get(s.seriesInstanceUid);
      const adds = indexed.has(receipt.receiptId) ? 0 : s.instanceCount;
      if (known) known.instanceCount += adds;
      else series.set(s.seriesInstanceUid, { ...s, instanceCount: adds });
    }
  for (const row of distinct) {
    const known = series.get(row.series);
    if (known) known.instanceCount += Number(row.n);
    else
      series.set(row.series, { seriesInstanceUid: row.series, modality: '', instanceCount: Number(row.n) });
  }
  return [...series.values()].sort((a, b) => a.seriesInstanceUid.localeCompare(b.seriesInstanceUid));
}

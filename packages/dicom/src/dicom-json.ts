import type { DicomJsonDataset, DicomJsonElement } from './model.js';

const BULK_VRS: ReadonlySet<string> = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);

/**
 * The DICOM JSON model of a dataset without bulk data: binary values are dropped (their VR is kept so a
 * reader knows the element exists), nested sequences are cleaned the same way, and dcmjs's raw values go.
 */
export function toNonBulkJson(dataset: DicomJsonDataset): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  for (const [tag, element] of Object.entries(dataset)) {
    out[tag] = cleanElement(element);
  }
  return out;
}

function cleanElement(element: DicomJsonElement): DicomJsonElement {
  if (BULK_VRS.has(element.vr)) return { vr: element.vr };
  if (element.vr === 'SQ') {
    const items = (element.Value ?? []) as DicomJsonDataset[];
    return { vr: 'SQ', Value: items.map((item) => toNonBulkJson(item)) };
  }
  return element.Value === undefined ? { vr: element.vr } : { vr: element.vr, Value: element.Value };
}

/** First value of an element as a trimmed string, or undefined when absent or empty. */
export function stringValue(dataset: DicomJsonDataset, tag: string): string | undefined {
  const element = dataset[tag];
  const value = element?.Value?.[0];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'object' && 'Alphabetic' in value) {
    return String(value.Alphabetic).trim() || undefined;
  }
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const text = String(value).replace(/\0/g, '').trim();
  return text === '' ? undefined : text;
}

import type { DicomJsonDataset } from './model.js';
import { open, readFile, stat } from 'node:fs/promises';
import { assertDatasetStructure, DatasetStructureError } from './dataset-framer.js';
import { stringValue } from './dicom-json.js';
import { readElements, type ReadElementsOptions } from './element-reader.js';
import { datasetBytes, DicomParseError, metaTransferSyntax } from './part10.js';
import { Tags } from './tags.js';

/** Raised when a dataset lacks an element the receiver needs to file it. */
export class MissingTagError extends Error {
  override readonly name = 'MissingTagError';
  constructor(readonly keyword: string) {
    super(`required element ${keyword} is missing or empty`);
  }
}

export interface InstanceInfo {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly transferSyntaxUid: string;
  readonly modality: string;
  readonly size: number;
  /** Top-level elements without bulk data, DICOM JSON model. */
  readonly elements: DicomJsonDataset;
}

export interface InspectOptions extends ReadElementsOptions {
  /**
   * Files up to this size are read whole and their framing checked end to end (catches truncation);
   * larger ones are only parsed up to Pixel Data, to keep memory flat.
   */
  readonly maxValidatedBytes?: number;
}

const DEFAULT_MAX_VALIDATED_BYTES = 256 * 1024 * 1024;
const HEADER_PROBE_BYTES = 4 * 1024 * 1024;

/**
 * Reads a Part-10 file, checks that its dataset frames correctly and carries the four identifying UIDs, and
 * returns them with the non-bulk elements. Throws {@link DicomParseError} or {@link MissingTagError}.
 */
export async function inspectPart10File(path: string, opts: InspectOptions = {}): Promise<InstanceInfo> {
  const { size } = await stat(path);
  const limit = opts.maxValidatedBytes ?? DEFAULT_MAX_VALIDATED_BYTES;
  if (size <= limit) return inspectPart10Buffer(await readFile(path), { ...opts, validate: true });
  const handle = await open(path, 'r');
  try {
    const probe = Buffer.alloc(Math.min(HEADER_PROBE_BYTES, size));
    const { bytesRead } = await handle.read(probe, 0, probe.length, 0);
    return { ...inspectPart10Buffer(probe.subarray(0, bytesRead), { ...opts, validate: false }), size };
  } finally {
    await handle.close();
  }
}

/** As {@link inspectPart10File}, on bytes in memory. */
export function inspectPart10Buffer(
  file: Buffer,
  opts: ReadElementsOptions & { readonly validate: boolean },
): InstanceInfo {
  const transferSyntaxUid = metaTransferSyntax(file);
  const body = datasetBytes(file, transferSyntaxUid);
  if (opts.validate) {
    try {
      assertDatasetStructure(body, transferSyntaxUid);
    } catch (err) {
      if (err instanceof DatasetStructureError) throw new DicomParseError(err.message);
      throw err;
    }
  }
  const elements: DicomJsonDataset = readElements(body, transferSyntaxUid, opts);
  const required = (keyword: keyof typeof Tags): string => {
    const value = stringValue(elements, Tags[keyword]);
    if (value === undefined) throw new MissingTagError(keyword);
    return value;
  };
  return {
    sopClassUid: required('SOPClassUID'),
    sopInstanceUid: required('SOPInstanceUID'),
    studyInstanceUid: required('StudyInstanceUID'),
    seriesInstanceUid: required('SeriesInstanceUID'),
    transferSyntaxUid,
    modality: stringValue(elements, Tags.Modality) ?? '',
    size: file.length,
    elements,
  };
}

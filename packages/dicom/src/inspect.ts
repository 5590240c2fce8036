import dcmjs from 'dcmjs';
import type { DicomJsonDataset } from './model.js';
import { open, readFile, stat } from 'node:fs/promises';
import { assertDatasetStructure, DatasetStructureError } from './dataset-framer.js';
import { stringValue, toNonBulkJson } from './dicom-json.js';
import { readPlainElements } from './element-reader.js';
import {
  datasetBytes,
  datasetOffset,
  DicomParseError,
  META_START,
  metaTransferSyntax,
  toArrayBuffer,
} from './part10.js';
import { Tags } from './tags.js';

dcmjs.log.setLevel('error');

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

export interface InspectOptions {
  /**
   * Files up to this size are read whole and their framing checked end to end (catches truncation);
   * larger ones are only parsed up to Pixel Data, to keep memory flat.
   */
  readonly maxValidatedBytes?: number;
}

const DEFAULT_MAX_VALIDATED_BYTES = 256 * 1024 * 1024;
const HEADER_PROBE_BYTES = 4 * 1024 * 1024;
/** Where the meta group's first element (its group length, 12 bytes) starts and ends. */
const META_GROUP_LENGTH_END = META_START + 12;

/**
 * Reads a Part-10 file, checks that its dataset frames correctly and carries the four identifying UIDs, and
 * returns them with the non-bulk elements. Throws {@link DicomParseError} or {@link MissingTagError}.
 */
export async function inspectPart10File(path: string, opts: InspectOptions = {}): Promise<InstanceInfo> {
  const { size } = await stat(path);
  const limit = opts.maxValidatedBytes ?? DEFAULT_MAX_VALIDATED_BYTES;
  if (size <= limit) return inspectPart10Buffer(await readFile(path), { validate: true });
  const handle = await open(path, 'r');
  try {
    const probe = Buffer.alloc(Math.min(HEADER_PROBE_BYTES, size));
    const { bytesRead } = await handle.read(probe, 0, probe.length, 0);
    return { ...inspectPart10Buffer(probe.subarray(0, bytesRead), { validate: false }), size };
  } finally {
    await handle.close();
  }
}

/** As {@link inspectPart10File}, on bytes in memory. */
export function inspectPart10Buffer(file: Buffer, opts: { validate: boolean }): InstanceInfo {
  const transferSyntaxUid = metaTransferSyntax(file);
  let body: Buffer | undefined;
  if (opts.validate) {
    body = datasetBytes(file, transferSyntaxUid);
    try {
      assertDatasetStructure(body, transferSyntaxUid);
    } catch (err) {
      if (err instanceof DatasetStructureError) throw new DicomParseError(err.message);
      throw err;
    }
  }
  const elements = readElementsDirectly(file, transferSyntaxUid, body) ?? readElementsWithDcmjs(file);
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

/**
 * The fast path ({@link readPlainElements}), taken only where dcmjs would read the same file the same
 * way: its meta group starts with a group length that ends where the group does (dcmjs trusts that
 * length, refuses a file without it).
 */
function readElementsDirectly(
  file: Buffer,
  transferSyntaxUid: string,
  body: Buffer | undefined,
): DicomJsonDataset | undefined {
  const offset = datasetOffset(file);
  const groupLengthIsSound =
    file.length >= META_GROUP_LENGTH_END &&
    file.readUInt32LE(META_START) === 0x00000002 &&
    file.toString('latin1', META_START + 4, META_START + 6) === 'UL' &&
    file.readUInt16LE(META_START + 6) === 4 &&
    META_GROUP_LENGTH_END + file.readUInt32LE(META_START + 8) === offset;
  if (!groupLengthIsSound) return undefined;
  let dataset = body;
  if (!dataset) {
    try {
      dataset = datasetBytes(file, transferSyntaxUid);
    } catch {
      return undefined; // dcmjs gives the error
    }
  }
  return readPlainElements(dataset, transferSyntaxUid);
}

function readElementsWithDcmjs(file: Buffer): DicomJsonDataset {
  try {
    const parsed = dcmjs.data.DicomMessage.readFile(toArrayBuffer(file), {
      untilTag: Tags.PixelData,
      includeUntilTagValue: false,
    }).dict;
    // dcmjs leaves a placeholder for the tag it stopped at.
    const { [Tags.PixelData]: _placeholder, ...rest } = parsed;
    return toNonBulkJson(rest);
  } catch (err) {
    throw new DicomParseError(`dataset cannot be parsed: ${(err as Error).message}`);
  }
}

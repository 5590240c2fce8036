import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw } from 'node:zlib';
import { FixtureError } from './errors.js';

const META_START = 132;
const HEAD_BYTES = 64 * 1024;
const LONG_LENGTH_VRS = new Set([
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'SQ',
  'SV',
  'UC',
  'UN',
  'UR',
  'UT',
  'UV',
]);

/** What a Part-10 file's meta group says, and where its dataset starts. */
export interface FileMeta {
  /** Byte offset of the first dataset byte (end of the meta group). */
  readonly datasetOffset: number;
  readonly transferSyntaxUid: string;
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
}

function uidValue(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/[\0 ]+$/, '');
}

/*
 * Walks the file meta group (always explicit VR little endian). Only group 0002 is walked: test fixtures
 * need the meta values and the dataset offset, never the dataset itself, which stays opaque bytes.
 */
async function scanMeta(path: string): Promise<{ datasetOffset: number; values: Map<number, Buffer> }> {
  const handle = await open(path, 'r');
  let head: Buffer;
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEAD_BYTES, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  if (head.length < META_START + 8 || head.toString('latin1', 128, META_START) !== 'DICM') {
    throw new FixtureError(`${path}: not a Part-10 file (no DICM prefix)`);
  }
  const values = new Map<number, Buffer>();
  let at = META_START;
  while (at + 8 <= head.length && head.readUInt16LE(at) === 0x0002) {
    const element = head.readUInt16LE(at + 2);
    const vr = head.toString('latin1', at + 4, at + 6);
    const long = LONG_LENGTH_VRS.has(vr);
    const length = long ? head.readUInt32LE(at + 8) : head.readUInt16LE(at + 6);
    const valueStart = at + (long ? 12 : 8);
    if (valueStart + length > head.length)
      throw new FixtureError(`${path}: meta element (0002,${element.toString(16)}) overruns`);
    values.set(element, head.subarray(valueStart, valueStart + length));
    at = valueStart + length;
  }
  return { datasetOffset: at, values };
}

/** Reads a Part-10 file's meta group; throws {@link FixtureError} when a needed element is missing. */
export async function readFileMeta(path: string): Promise<FileMeta> {
  const { datasetOffset, values } = await scanMeta(path);
  const text = (element: number): string => {
    const value = values.get(element);
    if (!value)
      throw new FixtureError(`${path}: meta group lacks (0002,${element.toString(16).padStart(4, '0')})`);
    return uidValue(value);
  };
  return {
    datasetOffset,
    transferSyntaxUid: text(0x10),
    sopClassUid: text(0x02),
    sopInstanceUid: text(0x03),
  };
}

const DEFLATED_EXPLICIT_LITTLE_ENDIAN = '1.2.840.10008.1.2.1.99';

async function hashFile(path: string, start: number, inflate = false): Promise<string> {
  const hash = createHash('sha256');
  if (inflate) await pipeline(createReadStream(path, { start }), createInflateRaw(), hash);
  else await pipeline(createReadStream(path, { start }), hash);
  return hash.digest('hex');
}

/** SHA-256 (hex) of a whole file. */
export function sha256File(path: string): Promise<string> {
  return hashFile(path, 0);
}

/**
 * SHA-256 (hex) of the dataset bytes only (everything after the Part-10 meta group), so files whose meta
 * differs (implementation UID, source AE, ...) but whose dataset arrived byte for byte compare equal.
 * A deflated dataset is hashed inflated: senders re-deflate, and the same bytes can deflate differently.
 */
export async function datasetDigest(path: string): Promise<string> {
  const { datasetOffset, values } = await scanMeta(path);
  const syntax = values.get(0x10);
  const deflated = syntax !== undefined && uidValue(syntax) === DEFLATED_EXPLICIT_LITTLE_ENDIAN;
  return hashFile(path, datasetOffset, deflated);
}

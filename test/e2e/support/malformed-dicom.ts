// Broken copies of a fixture instance, each broken in one way a sender gets wrong, and one valid instance
// of any size written to disk piece by piece. The fixtures are explicit VR little endian Part-10 files from
// generateCtSeries; what is changed is named at each builder.
import { open, readFile, writeFile } from 'node:fs/promises';
import { LONG_LENGTH_VRS } from '@dicomflow/dicom';
import { readFileMeta } from '@dicomflow/test-helpers';

const PIXEL_DATA = 0x7fe00010;
const UNDEFINED_LENGTH = 0xffffffff;

/** One top-level element of a fixture's dataset (offsets into the whole file). */
interface Element {
  readonly tag: number;
  readonly vr: string;
  readonly at: number;
  readonly valueAt: number;
  readonly length: number;
}

/** The file and its top-level elements (explicit VR little endian, defined lengths: what fixtures hold). */
async function elementsOf(
  path: string,
): Promise<{ file: Buffer; datasetOffset: number; elements: Element[] }> {
  const file = await readFile(path);
  const { datasetOffset } = await readFileMeta(path);
  const elements: Element[] = [];
  for (let at = datasetOffset; at + 8 <= file.length;) {
    const tag = ((file.readUInt16LE(at) << 16) | file.readUInt16LE(at + 2)) >>> 0;
    const vr = file.toString('latin1', at + 4, at + 6);
    const long = LONG_LENGTH_VRS.has(vr);
    const valueAt = at + (long ? 12 : 8);
    const length = long ? file.readUInt32LE(at + 8) : file.readUInt16LE(at + 6);
    elements.push({ tag, vr, at, valueAt, length });
    at = valueAt + length;
  }
  return { file, datasetOffset, elements };
}

function find(elements: readonly Element[], tag: number, path: string): Element {
  const found = elements.find((e) => e.tag === tag);
  if (!found) throw new Error(`${path} has no element (${tag.toString(16).padStart(8, '0')})`);
  return found;
}

/**
 * Wrong value lengths: Patient Name (a 16-bit length) claims 65,520 bytes and Pixel Data twice its size,
 * both past the end of the dataset. Pick one with `which`.
 */
export async function withWrongLength(src: string, dst: string, which: 'name' | 'pixels'): Promise<void> {
  const { file, elements } = await elementsOf(src);
  const copy = Buffer.from(file);
  if (which === 'name') copy.writeUInt16LE(0xfff0, find(elements, 0x00100010, src).at + 6);
  else {
    const pixels = find(elements, PIXEL_DATA, src);
    copy.writeUInt32LE(pixels.length * 2, pixels.at + 8);
  }
  await writeFile(dst, copy);
}

/**
 * Undefined lengths where they are not allowed: Study Description turned into a UT of undefined length
 * (only SQ, UN and encapsulated OB/OW may have one), or native (not encapsulated) Pixel Data of undefined
 * length, whose pixel values then stand where items should be.
 */
export async function withUndefinedLength(src: string, dst: string, which: 'text' | 'pixels'): Promise<void> {
  const { file, elements } = await elementsOf(src);
  if (which === 'pixels') {
    const copy = Buffer.from(file);
    copy.writeUInt32LE(UNDEFINED_LENGTH, find(elements, PIXEL_DATA, src).at + 8);
    await writeFile(dst, copy);
    return;
  }
  const text = find(elements, 0x00081030, src);
  const header = Buffer.alloc(12);
  header.writeUInt16LE(0x0008, 0);
  header.writeUInt16LE(0x1030, 2);
  header.write('UT', 4, 'latin1');
  header.writeUInt32LE(UNDEFINED_LENGTH, 8);
  await writeFile(dst, Buffer.concat([file.subarray(0, text.at), header, file.subarray(text.valueAt)]));
}

/** A 0-byte dataset: the meta group of `src` (so a C-STORE names its UIDs) and nothing after it. */
export async function withEmptyDataset(src: string, dst: string): Promise<void> {
  const { file, datasetOffset } = await elementsOf(src);
  await writeFile(dst, file.subarray(0, datasetOffset));
}

/** `count` pseudo-random bytes from `seed` (xorshift32): the same bytes every run, so the outcome is too. */
export function seededBytes(count: number, seed: number): Buffer {
  const bytes = Buffer.alloc(count);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

/** Random bytes after a valid header: every element of `src` before Pixel Data, then `count` random bytes. */
export async function withRandomTail(src: string, dst: string, count: number, seed: number): Promise<void> {
  const { file, elements } = await elementsOf(src);
  const pixels = find(elements, PIXEL_DATA, src);
  await writeFile(dst, Buffer.concat([file.subarray(0, pixels.at), seededBytes(count, seed)]));
}

const WRITE_CHUNK = 4 * 1024 * 1024;

/**
 * A valid instance of `pixelBytes` bytes of 16-bit pixel data (`rows` x pixelBytes/(2*rows) columns) with
 * the header of `src`, written to `dst` in 4 MiB pieces: it is never in memory whole.
 */
export async function writeLargeInstance(
  src: string,
  dst: string,
  pixelBytes: number,
  rows = 16_384,
): Promise<void> {
  const columns = pixelBytes / (2 * rows);
  if (!Number.isInteger(columns) || columns > 0xffff)
    throw new Error(`${pixelBytes} bytes are not ${rows} rows of 16-bit pixels (at most 65,535 columns)`);
  const { file, elements } = await elementsOf(src);
  const header = Buffer.from(file.subarray(0, find(elements, PIXEL_DATA, src).at));
  header.writeUInt16LE(rows, find(elements, 0x00280010, src).valueAt);
  header.writeUInt16LE(columns, find(elements, 0x00280011, src).valueAt);
  const pixelHeader = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57, 0, 0, 0, 0, 0, 0]);
  pixelHeader.writeUInt32LE(pixelBytes, 8);
  const chunk = seededBytes(WRITE_CHUNK, 7);
  const handle = await open(dst, 'w');
  try {
    await handle.write(Buffer.concat([header, pixelHeader]));
    for (let left = pixelBytes; left > 0; left -= chunk.length)
      await handle.write(chunk, 0, Math.min(left, chunk.length));
  } finally {
    await handle.close();
  }
}

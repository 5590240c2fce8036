import { open, type FileHandle } from 'node:fs/promises';
import { META_START, PREAMBLE_LENGTH, walkMetaGroup } from '../part10.js';

const HEAD_BYTES = 64 * 1024;
const FIRST_READ_BYTES = 4096;

/** A Part-10 file ready to be sent: where its dataset starts and what its meta group says. */
export interface InstanceFile {
  readonly path: string;
  readonly size: number;
  /** Offset of the first dataset byte (after the meta group); the rest of the file goes out as is. */
  readonly datasetOffset: number;
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
}

/** Why a file cannot be sent as a DICOM instance. */
export class NotAnInstanceError extends Error {
  override readonly name = 'NotAnInstanceError';
}

async function readHead(handle: FileHandle, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, 0);
  return buffer.subarray(0, bytesRead);
}

/** Leading bytes of a file {@link parseInstanceHead} looks at, at most. */
export const INSTANCE_HEAD_MAX_BYTES = HEAD_BYTES;

/**
 * Where the meta group of a Part-10 file ends, when it ends inside `head` (its first bytes), from the group
 * length element; undefined while more bytes are needed (or when `head` is not a Part-10 start).
 */
export function metaGroupEnd(head: Buffer): number | undefined {
  if (head.length < META_START + 12) return undefined;
  if (head.readUInt16LE(META_START) !== 0x0002 || head.readUInt16LE(META_START + 2) !== 0x0000)
    return undefined;
  const end = META_START + 12 + head.readUInt32LE(META_START + 8);
  return end <= head.length ? end : undefined;
}

/**
 * Reads the meta group of a Part-10 file (only its first 64 KiB are read). Throws
 * {@link NotAnInstanceError} when the file has no DICM prefix or lacks the SOP class, SOP instance or
 * transfer syntax UID in its meta group.
 */
export async function readInstanceFile(path: string): Promise<InstanceFile> {
  const handle = await open(path, 'r');
  let head: Buffer;
  let size: number;
  try {
    size = (await handle.stat()).size;
    // A meta group is usually a few hundred bytes: read a little, and more only when it is longer.
    head = await readHead(handle, Math.min(FIRST_READ_BYTES, size));
    if (head.length < size && metaGroupEnd(head) === undefined)
      head = await readHead(handle, Math.min(HEAD_BYTES, size));
  } finally {
    await handle.close();
  }
  return parseInstanceHead(path, size, head);
}

/**
 * The {@link InstanceFile} of the file at `path` of `size` bytes from its first bytes `head` (the whole meta
 * group, see {@link metaGroupEnd}, or at most {@link INSTANCE_HEAD_MAX_BYTES}): for a file whose start is
 * still in memory (e.g. just written from a stream), without reading it again. Throws
 * {@link NotAnInstanceError} like {@link readInstanceFile}.
 */
export function parseInstanceHead(path: string, size: number, head: Buffer): InstanceFile {
  if (head.length < META_START + 8 || head.toString('latin1', PREAMBLE_LENGTH, META_START) !== 'DICM')
    throw new NotAnInstanceError('not a DICOM Part-10 file (no DICM prefix)');
  const { datasetOffset, uids } = walkMetaGroup(
    head,
    () => new NotAnInstanceError('the file meta group ends early'),
  );
  const sopClassUid = uids.get(0x02);
  const sopInstanceUid = uids.get(0x03);
  const transferSyntaxUid = uids.get(0x10);
  if (!sopClassUid || !sopInstanceUid || !transferSyntaxUid)
    throw new NotAnInstanceError(
      'the file meta group lacks the SOP class, SOP instance or transfer syntax UID',
    );
  return { path, size, datasetOffset, sopClassUid, sopInstanceUid, transferSyntaxUid };
}

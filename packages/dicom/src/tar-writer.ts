import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

const BLOCK = 512;
/** Two zero blocks end a tar. */
export const END_OF_ARCHIVE_BYTES = 2 * BLOCK;
const MAX_OCTAL_SIZE = 0o77777777777;

/** One entry of a tar written by {@link tarHeader}: a regular file or a folder (name ending with `/`). */
export interface TarHeaderFields {
  readonly name: string;
  readonly type: 'file' | 'directory';
  readonly size: number;
  readonly mode: number;
  readonly mtime: Date;
}

function octal(value: number, digits: number): string {
  return `${Math.max(0, Math.floor(value)).toString(8).padStart(digits, '0')} `;
}

/**
 * True when a member name fits one plain ustar header block (ASCII; the name, or a prefix/name split at a
 * `/`, within the fields), so the member's header size is known up front.
 */
export function fitsUstar(name: string): boolean {
  return ustarName(name) !== undefined;
}

/** Splits a name into ustar `prefix` and `name` (greedy, like GNU tar), or undefined when it cannot fit. */
function ustarName(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) !== name.length) return undefined; // not ASCII: the name goes in a pax record
  if (name.length <= 100) return { prefix: '', name };
  for (let at = name.indexOf('/'); at !== -1; at = name.indexOf('/', at + 1)) {
    if (name.length - at - 1 <= 100 && name.length - at - 1 > 0) {
      return at <= 155 ? { prefix: name.slice(0, at), name: name.slice(at + 1) } : undefined;
    }
  }
  return undefined;
}

function block(fields: {
  name: string;
  prefix: string;
  typeflag: string;
  size: number;
  mode: number;
  mtime: Date;
}): Buffer {
  const header = Buffer.alloc(BLOCK);
  header.write(fields.name, 0, 100, 'utf8');
  header.write(octal(fields.mode & 0o7777, 6), 100, 'ascii');
  header.write(octal(0, 6), 108, 'ascii');
  header.write(octal(0, 6), 116, 'ascii');
  if (fields.size > MAX_OCTAL_SIZE) {
    // GNU base-256 for sizes of 8 GiB and more.
    header[124] = 0x80;
    let rest = fields.size;
    for (let i = 135; i > 124; i--) {
      header[i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
  } else header.write(octal(fields.size, 11), 124, 'ascii');
  header.write(octal(fields.mtime.getTime() / 1000, 11), 136, 'ascii');
  header.write(fields.typeflag, 156, 'ascii');
  header.write('ustar\u000000', 257, 'ascii');
  header.write(fields.prefix, 345, 155, 'ascii');
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
  return header;
}

/** A pax record `"<length> path=<name>\n"`, its length counting its own digits. */
function paxPathRecord(name: string): Buffer {
  const body = ` path=${name}\n`;
  const bytes = Buffer.byteLength(body);
  let length = bytes + 1;
  while (String(length).length + bytes !== length) length = String(length).length + bytes;
  return Buffer.from(`${length}${body}`);
}

/**
 * The header blocks of one entry: one ustar block, or for a name that does not fit one (long or not
 * ASCII), a pax extended header holding the name, then the ustar block. Regular files and folders only.
 */
export function tarHeader(entry: TarHeaderFields): Buffer {
  const typeflag = entry.type === 'directory' ? '5' : '0';
  const size = entry.type === 'directory' ? 0 : entry.size;
  const fits = ustarName(entry.name);
  if (fits) return block({ ...fits, typeflag, size, mode: entry.mode, mtime: entry.mtime });
  const record = paxPathRecord(entry.name);
  const padding = (BLOCK - (record.length % BLOCK)) % BLOCK;
  const shortName = entry.name.replace(/[^\x20-\x7e]/g, '_').slice(-99);
  return Buffer.concat([
    block({
      name: 'PaxHeader',
      prefix: '',
      typeflag: 'x',
      size: record.length,
      mode: 0o644,
      mtime: entry.mtime,
    }),
    record,
    Buffer.alloc(padding),
    block({ name: shortName, prefix: '', typeflag, size, mode: entry.mode, mtime: entry.mtime }),
  ]);
}

/** Zero bytes after `size` bytes of content up to the next block. */
export function tarPadding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** One member of a tar written by {@link tarChunks}: its header blocks and the file its content comes from. */
export interface TarMember {
  readonly name: string;
  /** The member's header blocks ({@link tarHeader}). */
  readonly header: Buffer;
  /** File holding the content; not read when `size` is 0 (empty files, folders). */
  readonly path: string;
  readonly size: number;
}

/** A member's file could not be read (gone, unreadable) while its tar was written. */
export class TarMemberReadError extends Error {
  override readonly name = 'TarMemberReadError';
  constructor(
    readonly member: string,
    cause: Error,
  ) {
    super(`tar member ${member}: its file cannot be read: ${cause.message}`, { cause });
  }
}

/** A member's file held fewer bytes than its header says: the tar would be cut short. */
export class TarMemberSizeError extends Error {
  override readonly name = 'TarMemberSizeError';
  constructor(
    readonly member: string,
    readonly read: number,
    readonly size: number,
  ) {
    super(`tar member ${member}: its file has ${read} of the ${size} bytes expected`);
  }
}

/**
 * The bytes of a tar of `members`, one file open at a time, packed into chunks of `chunkBytes` (the last may
 * be shorter): headers, contents and padding are written into the chunk, and file contents are read
 * straight into it, so a chunk is one fresh Buffer whatever the number of members (it was three Buffers per
 * member: 60,000 for a receipt of 20,000 small instances). Never more
 * than `size` bytes of a file are read; a file with fewer fails with {@link TarMemberSizeError}, one that
 * cannot be read with {@link TarMemberReadError}.
 *
 * By default files are opened and read with synchronous calls (the event loop runs between chunks): a read
 * of up to `chunkBytes` from the page cache took less than the thread pool's round trip for it on the
 * 2-core test machine, and a study is hundreds of files of a few reads each. When `inline` says no (asked
 * per file), that file goes through the thread pool instead: a process that also serves latency-bound
 * traffic (the receiver, with associations open) must not stall on a slow disk. Without `endOfArchive`
 * the two closing zero blocks are left out: the bytes are a run of members inside a longer archive.
 */
export async function* tarChunks(
  members: Iterable<TarMember>,
  chunkBytes: number,
  inline: () => boolean = () => true,
  endOfArchive = true,
): AsyncGenerator<Buffer> {
  // A fresh chunk each time one is handed on: the consumer (a socket) may still hold the previous one.
  let chunk = Buffer.allocUnsafe(chunkBytes);
  let used = 0;
  /** Counts `n` bytes just written into the chunk; returns the chunk once it is full (and starts anew). */
  function advance(n: number): Buffer | undefined {
    used += n;
    if (used < chunk.length) return undefined;
    const full = chunk;
    chunk = Buffer.allocUnsafe(chunkBytes);
    used = 0;
    return full;
  }
  function* put(bytes: Buffer): Generator<Buffer> {
    for (let at = 0; at < bytes.length;) {
      const n = bytes.copy(chunk, used, at);
      at += n;
      const full = advance(n);
      if (full) yield full;
    }
  }
  function* zeros(count: number): Generator<Buffer> {
    for (let left = count; left > 0;) {
      const n = Math.min(left, chunk.length - used);
      chunk.fill(0, used, used + n);
      left -= n;
      const full = advance(n);
      if (full) yield full;
    }
  }
  for (const member of members) {
    yield* put(member.header);
    if (member.size === 0) continue;
    const file = inline() ? openNow(member) : await openPooled(member);
    let read = 0;
    try {
      while (read < member.size) {
        const wanted = Math.min(chunk.length - used, member.size - read);
        let got: number;
        try {
          got = await file.read(chunk, used, wanted, read);
        } catch (err) {
          throw readError(member, err);
        }
        if (got === 0) break;
        read += got;
        const full = advance(got);
        if (full) yield full;
      }
    } finally {
      await file.close();
    }
    if (read !== member.size) throw new TarMemberSizeError(member.name, read, member.size);
    yield* zeros(tarPadding(member.size));
  }
  if (endOfArchive) yield* zeros(END_OF_ARCHIVE_BYTES);
  if (used > 0) yield chunk.subarray(0, used);
}

/** A member's open file: read at a position, then closed. */
interface MemberFile {
  read(into: Buffer, offset: number, length: number, position: number): number | Promise<number>;
  close(): void | Promise<void>;
}

function openNow(member: TarMember): MemberFile {
  let fd: number;
  try {
    fd = openSync(member.path, 'r');
  } catch (err) {
    throw readError(member, err);
  }
  return {
    read: (into, offset, length, position) => readSync(fd, into, offset, length, position),
    close: () => {
      closeSync(fd);
    },
  };
}

async function openPooled(member: TarMember): Promise<MemberFile> {
  try {
    const handle = await open(member.path, 'r');
    return {
      read: async (into, offset, length, position) =>
        (await handle.read(into, offset, length, position)).bytesRead,
      close: () => handle.close(),
    };
  } catch (err) {
    throw readError(member, err);
  }
}

function readError(member: TarMember, err: unknown): TarMemberReadError {
  return new TarMemberReadError(member.name, err instanceof Error ? err : new Error(String(err)));
}

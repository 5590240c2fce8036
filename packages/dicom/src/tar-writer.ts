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

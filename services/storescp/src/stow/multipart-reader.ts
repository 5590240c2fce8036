/** The body does not follow the multipart syntax (RFC 2046 5.1.1) for its boundary. */
export class MultipartError extends Error {
  override readonly name = 'MultipartError';
}

/** One part of a multipart body. */
export interface MultipartPart {
  /** Its header fields, by lower-case name. */
  readonly headers: ReadonlyMap<string, string>;
  /**
   * Its content, in order, as it arrives. Read it (wholly, partly or not at all) before asking the reader
   * for the next part, which skips what is left; it is not valid after that.
   */
  readonly body: AsyncIterable<Buffer>;
}

/** Header bytes of one part, at most, by default. */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/** Spaces and tabs allowed after a boundary (RFC 2046's transport padding), at most. */
const MAX_PADDING = 1024;

const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);
const HEADERS_END = Buffer.from('\r\n\r\n');
const DASH = 0x2d;
const SPACE = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;

/**
 * Splits a multipart body into its parts as it streams, never holding more than one received chunk plus a
 * boundary's length (and one part's headers, bounded). Each byte is searched and copied a bounded number of
 * times, so the cost is linear in the body. The preamble and the epilogue are read and dropped.
 */
export class MultipartReader {
  /** `\r\n--boundary`: what ends a part (RFC 2046: the CRLF before a boundary belongs to it). */
  private readonly delimiter: Buffer;
  /**
   * Received bytes not yet handed out. It starts with a CRLF of our own, so that a body opening with its
   * first boundary (no preamble) holds a whole delimiter like any later one.
   */
  private buffered: Buffer = CRLF;
  private sourceDone = false;
  private state: 'preamble' | 'part' | 'delimiter' | 'closed' = 'preamble';

  constructor(
    private readonly source: AsyncIterator<Buffer>,
    boundary: string,
    private readonly maxHeaderBytes = DEFAULT_MAX_HEADER_BYTES,
  ) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  }

  /**
   * The next part, or undefined after the close delimiter (the epilogue is read and dropped first, so the
   * source is then at its end). Throws {@link MultipartError} when the body breaks the syntax, and
   * whatever the source throws.
   */
  async next(): Promise<MultipartPart | undefined> {
    if (this.state === 'closed') return undefined;
    if (this.state !== 'delimiter') {
      // The preamble, or what the caller left of the last part, is dropped.
      const skipped = this.untilDelimiter();
      for (let step = await skipped.next(); step.done !== true; step = await skipped.next());
    }
    if (await this.closeDelimiterFollows()) {
      this.state = 'closed';
      while (await this.pull()) this.buffered = EMPTY;
      return undefined;
    }
    const headers = await this.readHeaders();
    this.state = 'part';
    return { headers, body: this.untilDelimiter() };
  }

  /** Yields bytes up to the next delimiter, and consumes the delimiter. */
  private async *untilDelimiter(): AsyncGenerator<Buffer, void, undefined> {
    const keep = this.delimiter.length - 1;
    for (;;) {
      const at = this.buffered.indexOf(this.delimiter);
      if (at >= 0) {
        const last = this.buffered.subarray(0, at);
        this.buffered = this.buffered.subarray(at + this.delimiter.length);
        this.state = 'delimiter';
        if (last.length > 0) yield last;
        return;
      }
      // All but the last bytes, which may be the start of a delimiter split across chunks.
      if (this.buffered.length > keep) {
        const out = this.buffered.subarray(0, this.buffered.length - keep);
        this.buffered = this.buffered.subarray(this.buffered.length - keep);
        yield out;
      }
      if (!(await this.pull())) {
        throw new MultipartError(
          this.state === 'preamble'
            ? 'the body holds no boundary of its Content-Type'
            : 'the body ends inside a part: its closing boundary is missing',
        );
      }
    }
  }

  /**
   * After a delimiter: true for the close delimiter (`--`), false for the start of another part (optional
   * spaces or tabs, then CRLF).
   */
  private async closeDelimiterFollows(): Promise<boolean> {
    await this.need(2, 'the body ends right after a boundary: the closing "--" is missing');
    if (this.buffered[0] === DASH && this.buffered[1] === DASH) {
      this.buffered = this.buffered.subarray(2);
      return true;
    }
    let at = 0;
    for (;;) {
      while (at < this.buffered.length && (this.buffered[at] === SPACE || this.buffered[at] === TAB)) at += 1;
      if (at > MAX_PADDING) throw new MultipartError('a boundary line must end with CRLF');
      if (at + 2 <= this.buffered.length) break;
      if (!(await this.pull()))
        throw new MultipartError('the body ends right after a boundary: the closing "--" is missing');
    }
    if (this.buffered[at] !== CR || this.buffered[at + 1] !== LF)
      throw new MultipartError('a boundary line must end with CRLF');
    this.buffered = this.buffered.subarray(at + 2);
    return false;
  }

  /** Reads a part's header block (up to and including the empty line). */
  private async readHeaders(): Promise<Map<string, string>> {
    await this.need(2, 'the body ends inside the headers of a part');
    // No header fields: the empty line comes at once.
    if (this.buffered[0] === CR && this.buffered[1] === LF) {
      this.buffered = this.buffered.subarray(2);
      return new Map();
    }
    let searchFrom = 0;
    for (;;) {
      const end = this.buffered.indexOf(HEADERS_END, searchFrom);
      if (end >= 0) {
        if (end > this.maxHeaderBytes) break;
        const block = this.buffered.toString('latin1', 0, end);
        this.buffered = this.buffered.subarray(end + HEADERS_END.length);
        return parseHeaderBlock(block);
      }
      if (this.buffered.length > this.maxHeaderBytes) break;
      searchFrom = Math.max(0, this.buffered.length - (HEADERS_END.length - 1));
      if (!(await this.pull())) throw new MultipartError('the body ends inside the headers of a part');
    }
    throw new MultipartError(`the headers of a part are longer than ${this.maxHeaderBytes} bytes`);
  }

  /** Makes sure at least `bytes` bytes are buffered; throws with `message` when the body ends first. */
  private async need(bytes: number, message: string): Promise<void> {
    while (this.buffered.length < bytes) if (!(await this.pull())) throw new MultipartError(message);
  }

  /** Appends the next chunk of the source; false once the source is at its end. */
  private async pull(): Promise<boolean> {
    if (this.sourceDone) return false;
    const next = await this.source.next();
    if (next.done === true) {
      this.sourceDone = true;
      return false;
    }
    // What is buffered here is at most a delimiter's length (or a part's headers): the copy stays small.
    this.buffered = this.buffered.length === 0 ? next.value : Buffer.concat([this.buffered, next.value]);
    return true;
  }
}

/** Header fields of a part, one per line, `name: value`; a line starting with white space continues the last. */
function parseHeaderBlock(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const line of block.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
      headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new MultipartError('a part header line is not "name: value"');
    last = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(last)) headers.set(last, line.slice(colon + 1).trim());
  }
  return headers;
}

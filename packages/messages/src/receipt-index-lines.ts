import type { Readable } from 'node:stream';
import { ReceiptIndexHeader, ReceiptIndexInstance, type ReceiptIndex } from './receipt-index.js';
import { validateWith } from './validate.js';

/*
 * A receipt index is JSON Lines: a header line (the receipt id and instance count), then one line per
 * instance. Writers and readers go line by line, so no service holds a study's index in memory: a
 * 20,000-instance index is ~200 MB of JSON, one line ~10 KB.
 */

const NEWLINE = 0x0a;
/** The default bound on one line: an instance's elements, each value bounded by INDEX_MAX_VALUE_BYTES. */
export const DEFAULT_MAX_INDEX_LINE_BYTES = 64 * 1024 * 1024;

/** Raised for an index that is not a receipt index: says which line and why, never what the line holds. */
export class ReceiptIndexFormatError extends Error {
  override readonly name = 'ReceiptIndexFormatError';
}

/** The header line of an index (with its newline). */
export function formatReceiptIndexHeader(header: ReceiptIndexHeader): string {
  return `${JSON.stringify(header)}\n`;
}

/** One instance line of an index (with its newline). */
export function formatReceiptIndexInstance(instance: ReceiptIndexInstance): string {
  return `${JSON.stringify(instance)}\n`;
}

/** A whole index as JSON Lines (for small indexes: tests, tools). */
export function formatReceiptIndex(index: ReceiptIndex): string {
  return (
    formatReceiptIndexHeader({ receiptId: index.receiptId, instanceCount: index.instances.length }) +
    index.instances.map(formatReceiptIndexInstance).join('')
  );
}

/**
 * Reads an index line by line: first its header, then each instance, validated one at a time. Throws a
 * {@link ReceiptIndexFormatError} for a line that is not JSON or not valid, a line longer than
 * `maxLineBytes`, or a count of instances other than the header's; stream errors pass through as they are.
 */
export async function* readReceiptIndexLines(
  source: Readable,
  opts: { readonly maxLineBytes?: number } = {},
): AsyncGenerator<
  { readonly header: ReceiptIndexHeader } | { readonly instance: ReceiptIndexInstance },
  void,
  undefined
> {
  let header: ReceiptIndexHeader | undefined;
  let count = 0;
  let lineNumber = 0;
  for await (const line of readLines(source, opts.maxLineBytes ?? DEFAULT_MAX_INDEX_LINE_BYTES)) {
    lineNumber += 1;
    if (line.length === 0) continue;
    const data = parseLine(line, lineNumber);
    if (header === undefined) {
      const valid = validateWith(ReceiptIndexHeader, data);
      if (!valid.ok) throw new ReceiptIndexFormatError(`line 1 is not an index header: ${valid.error}`);
      header = valid.value;
      yield { header };
      continue;
    }
    const valid = validateWith(ReceiptIndexInstance, data);
    if (!valid.ok) throw new ReceiptIndexFormatError(`line ${lineNumber} is not an instance: ${valid.error}`);
    count += 1;
    yield { instance: valid.value };
  }
  if (header === undefined) throw new ReceiptIndexFormatError('the index is empty (no header line)');
  if (count !== header.instanceCount) {
    throw new ReceiptIndexFormatError(
      `the index lists ${count} instance(s), its header says ${header.instanceCount} (cut short?)`,
    );
  }
}

/** Reads a whole (small) index into memory: tests and tools; services use {@link readReceiptIndexLines}. */
export async function readReceiptIndex(source: Readable): Promise<ReceiptIndex> {
  let receiptId = '';
  const instances: ReceiptIndexInstance[] = [];
  for await (const record of readReceiptIndexLines(source)) {
    if ('header' in record) receiptId = record.header.receiptId;
    else instances.push(record.instance);
  }
  return { receiptId, instances };
}

function parseLine(line: Buffer, lineNumber: number): unknown {
  try {
    return JSON.parse(line.toString('utf8'));
  } catch (err) {
    // Not the parser's message: V8 quotes the text around the error, which may hold patient data.
    const position = /at position (\d+)/.exec((err as Error).message)?.[1];
    throw new ReceiptIndexFormatError(
      `line ${lineNumber} is not JSON${position === undefined ? '' : ` (error at character ${position})`}`,
    );
  }
}

/**
 * The lines of a byte stream, without their newlines, pulled one at a time (the stream is read no further
 * ahead than one chunk: readline's iterator queued lines faster than a slow loop took them, and a 40 MB spool
 * index went into the heap). A line's pieces are kept as a list and joined once, so a long line costs time
 * in proportion to its length, and a line over `maxBytes` fails at once.
 */
export async function* readLines(
  source: Readable,
  maxBytes: number,
): AsyncGenerator<Buffer, void, undefined> {
  let pieces: Buffer[] = [];
  let pending = 0;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, end);
      yield pending === 0 ? piece : Buffer.concat([...pieces, piece], pending + piece.length);
      pieces = [];
      pending = 0;
      start = end + 1;
    }
    if (start < chunk.length) {
      pieces.push(chunk.subarray(start));
      pending += chunk.length - start;
      if (pending > maxBytes) {
        throw new ReceiptIndexFormatError(`an index line is longer than ${maxBytes} bytes`);
      }
    }
  }
  if (pending > 0) yield Buffer.concat(pieces, pending);
}

import type { Readable } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';
import { ReceiptIndexFormatError, readLines } from './receipt-index-lines.js';
import { DicomUid } from './schema-parts.js';
import { validateWith } from './validate.js';

/**
 * One line of a run's delivered manifest (`<runId>/delivered.jsonl` in the runs bucket, named by
 * `send.finished`): one instance acknowledged by one target. The list lives in S3 because a run may deliver
 * 100 000 instances, which no message should carry.
 */
export const DeliveredInstanceLine = Type.Object(
  {
    sopInstanceUid: DicomUid,
    /** The target as `sendTargetText` writes it: `AE@host:port`, or the DICOMweb URL. */
    target: Type.String({ minLength: 1, maxLength: 2048 }),
  },
  { additionalProperties: false },
);
export type DeliveredInstanceLine = Static<typeof DeliveredInstanceLine>;

/** A manifest line is a UID and a target: anything far longer is not one. */
const MAX_DELIVERED_LINE_BYTES = 8 * 1024;

/** One line of a delivered manifest, with its newline. */
export function formatDeliveredLine(line: DeliveredInstanceLine): string {
  return `${JSON.stringify(line)}\n`;
}

/**
 * Reads a delivered manifest line by line (never whole: bounded memory), validating each. Throws a
 * {@link ReceiptIndexFormatError} naming the line for one that is not JSON or not valid; stream errors pass
 * through as they are.
 */
export async function* readDeliveredLines(
  source: Readable,
): AsyncGenerator<DeliveredInstanceLine, void, undefined> {
  let lineNumber = 0;
  for await (const line of readLines(source, MAX_DELIVERED_LINE_BYTES)) {
    lineNumber += 1;
    if (line.length === 0) continue;
    let data: unknown;
    try {
      data = JSON.parse(line.toString('utf8'));
    } catch {
      throw new ReceiptIndexFormatError(`delivered manifest line ${lineNumber} is not JSON`);
    }
    const valid = validateWith(DeliveredInstanceLine, data);
    if (!valid.ok)
      throw new ReceiptIndexFormatError(`delivered manifest line ${lineNumber} is not valid: ${valid.error}`);
    yield valid.value;
  }
}

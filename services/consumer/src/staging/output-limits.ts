import { JobFailure } from '../jobs/job-failure.js';

/** The refusal of an output with more than `maxEntries` files and folders (MAX_OUTPUT_ENTRIES). */
export function tooManyEntries(maxEntries: number): JobFailure {
  return new JobFailure(
    'output',
    `the output holds more than ${maxEntries} files and folders (MAX_OUTPUT_ENTRIES)`,
  );
}

/** The refusal of an output larger than `maxBytes` (MAX_OUTPUT_BYTES). */
export function tooManyBytes(maxBytes: number): JobFailure {
  return new JobFailure('output', `the output is larger than the limit of ${maxBytes} bytes`);
}

import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChecked } from './run-command.js';

/** 1 MiB of spaces and then `x`: the value the quadratic end-trim took minutes on. */
export const SPACES_THEN_X = `${' '.repeat(1024 * 1024 - 1)}x`;
/** About 1 MiB of two-character words: a value with internal spaces, then `ENDS`. */
export const WORDS_THEN_ENDS = `${'a '.repeat(512 * 1024)}ENDS`;

/**
 * Copies `src` to `dst` with the element `tag` (`(gggg,eeee)`) set to `text`, however long (dcmodify reads
 * it from a file: a command-line argument is limited to 128 KiB). With `implicit`, the file is converted
 * to implicit VR little endian first, so that any VR can hold a value over 64 KiB (explicit VR gives LO,
 * SH, CS, PN ... a 16-bit length). An odd-length text gets a trailing space, as DICOM pads it.
 */
export async function withLongText(
  src: string,
  dst: string,
  tag: string,
  text: string,
  opts: { readonly implicit?: boolean } = {},
): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'dicomflow-long-value-'));
  try {
    const valueFile = join(work, 'value.txt');
    await writeFile(valueFile, text.length % 2 === 0 ? text : `${text} `, 'latin1');
    if (opts.implicit) await runChecked('dcmconv', ['-q', '+ti', src, dst]);
    else await copyFile(src, dst);
    await runChecked('dcmodify', ['-q', '-nb', '-if', `${tag}=${valueFile}`, dst]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

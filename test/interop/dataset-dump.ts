// Editing a fixture through dcmtk's text form: dcmdump writes its dataset as lines (pixel data to a file
// beside them), the caller adds or drops lines, and dump2dcm writes a new file from them with the
// encoding options given (transfer syntax, undefined lengths, no meta header, ...). So each corpus case
// is made by dcmtk itself, never by bytes of our own, unless a case is about bytes dcmtk will not write.
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runChecked } from '@dicomflow/test-helpers';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';

/** A folder to dump and rebuild in; dump2dcm's `=file` references are relative to it. */
export interface DumpWork {
  readonly dir: string;
  /** The dataset lines of `src` (meta group left out); its pixel data is a file in `dir`. */
  datasetLines(src: string): Promise<string[]>;
  /** Writes `name` (a file of `dir`) with raw bytes, for `=name` values. */
  writeValue(name: string, bytes: Buffer): Promise<void>;
  /**
   * Writes `dst` from `lines` with dump2dcm and `options` (e.g. `+ti`, `-e`, `-F`); the lines are in
   * `transferSyntaxUid` (default explicit VR little endian), which an encapsulated pixel sequence needs.
   */
  build(
    lines: readonly string[],
    dst: string,
    options?: readonly string[],
    transferSyntaxUid?: string,
  ): Promise<void>;
  close(): Promise<void>;
}

/** Opens a work folder next to `near` (a file path) for dump edits. */
export async function openDumpWork(near: string): Promise<DumpWork> {
  const dir = await mkdtemp(join(dirname(near), '.dump-'));
  let counter = 0;
  return {
    dir,
    async datasetLines(src) {
      // +W writes values over 4 KiB (pixel data) to files in the cwd, named in the dump as `=./...`.
      const { stdout } = await runChecked('dcmdump', ['-q', '+L', '-Un', '+W', '.', src], { cwd: dir });
      return stdout.split('\n').filter((line) => /^\s*\(/.test(line) && !line.startsWith('(0002,'));
    },
    async writeValue(name, bytes) {
      await writeFile(join(dir, name), bytes);
    },
    async build(lines, dst, options = [], transferSyntaxUid = EXPLICIT_LE) {
      counter += 1;
      const dump = `dataset-${counter}.dump`;
      const out = `out-${counter}.dcm`;
      await writeFile(join(dir, dump), [`(0002,0010) UI [${transferSyntaxUid}]`, ...lines, ''].join('\n'));
      await runChecked('dump2dcm', ['-q', ...options, dump, out], { cwd: dir });
      await copyFile(join(dir, out), dst);
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Dump lines of a sequence of `items` (each a list of element lines), indented as dcmdump writes them. */
export function sequenceLines(tag: string, items: readonly (readonly string[])[]): string[] {
  const lines = [`(${tag}) SQ (Sequence with explicit length #=${items.length})`];
  for (const item of items) {
    lines.push(`  (fffe,e000) na (Item with explicit length #=${item.length})`);
    lines.push(...item.map((line) => `  ${line}`));
    lines.push('  (fffe,e00d) na (ItemDelimitationItem)');
  }
  lines.push('(fffe,e0dd) na (SequenceDelimitationItem)');
  return lines;
}

/** `lines` without the top-level elements whose tag (`gggg,eeee`, lower case) is in `tags`. */
export function withoutTags(lines: readonly string[], tags: readonly string[]): string[] {
  return lines.filter((line) => !tags.some((tag) => line.startsWith(`(${tag})`)));
}

import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FixtureError } from './errors.js';
import { minimalJ2kCodestream } from './j2k-codestream.js';
import { runChecked } from './run-command.js';

export type TransferSyntaxName =
  | 'explicit-le'
  | 'implicit-le'
  | 'explicit-be'
  | 'deflate'
  | 'jpeg-baseline'
  | 'jpeg-lossless'
  | 'rle'
  | 'jpeg-ls-lossless'
  | 'jpeg2000';

export const TRANSFER_SYNTAX_UIDS: Record<TransferSyntaxName, string> = {
  'explicit-le': '1.2.840.10008.1.2.1',
  'implicit-le': '1.2.840.10008.1.2',
  'explicit-be': '1.2.840.10008.1.2.2',
  deflate: '1.2.840.10008.1.2.1.99',
  'jpeg-baseline': '1.2.840.10008.1.2.4.50',
  'jpeg-lossless': '1.2.840.10008.1.2.4.70',
  rle: '1.2.840.10008.1.2.5',
  'jpeg-ls-lossless': '1.2.840.10008.1.2.4.80',
  jpeg2000: '1.2.840.10008.1.2.4.90',
};

// Lossy JPEG would get a new SOP Instance UID by default; fixtures keep theirs (+un) so tests can
// follow an instance through conversions. Baseline is 8-bit only, so 16-bit input is scaled (+be).
const DCMTK_COMMANDS: Record<
  Exclude<TransferSyntaxName, 'jpeg2000'>,
  readonly [string, readonly string[]]
> = {
  'explicit-le': ['dcmconv', ['+te']],
  'implicit-le': ['dcmconv', ['+ti']],
  'explicit-be': ['dcmconv', ['+tb']],
  deflate: ['dcmconv', ['+td']],
  'jpeg-baseline': ['dcmcjpeg', ['+eb', '+be', '+un']],
  'jpeg-lossless': ['dcmcjpeg', ['+e1', '+un']],
  rle: ['dcmcrle', []],
  'jpeg-ls-lossless': ['dcmcjpls', ['+el']],
};

/**
 * Writes `src` re-encoded in transfer syntax `ts` to `dst` with dcmtk (dcmconv, dcmcjpeg, dcmcrle,
 * dcmcjpls). `src` must be uncompressed. For 'jpeg2000' see {@link minimalJ2kCodestream}: the file is a
 * valid Part-10 JPEG 2000 Lossless file built by dump2dcm, but its frame is a uniform image, not `src`'s.
 */
export async function convertTransferSyntax(src: string, dst: string, ts: TransferSyntaxName): Promise<void> {
  if (ts === 'jpeg2000') {
    await writeJpeg2000(src, dst);
    return;
  }
  const [command, args] = DCMTK_COMMANDS[ts];
  await runChecked(command, ['-q', ...args, src, dst]);
}

function dumpNumber(dump: string, tag: string): number {
  const match = new RegExp(`^\\(${tag}\\) US (\\d+)`, 'm').exec(dump);
  if (!match?.[1]) throw new FixtureError(`source has no (${tag})`);
  return Number(match[1]);
}

async function writeJpeg2000(src: string, dst: string): Promise<void> {
  const work = await mkdtemp(join(dirname(dst), '.j2k-'));
  try {
    const native = join(work, 'native.dcm');
    await runChecked('dcmconv', ['-q', '+te', src, native]);
    // +W moves the pixel data out of the dump; it is replaced by an encapsulated pixel sequence.
    const { stdout } = await runChecked('dcmdump', ['-q', '+L', '-Un', '+W', work, native]);
    const columns = dumpNumber(stdout, '0028,0011');
    const rows = dumpNumber(stdout, '0028,0010');
    const bitsStored = dumpNumber(stdout, '0028,0101');
    await writeFile(join(work, 'frame.j2k'), minimalJ2kCodestream(columns, rows, bitsStored));
    const datasetLines = stdout
      .split('\n')
      .filter((line) => /^\s*\(/.test(line) && !line.startsWith('(0002,') && !line.startsWith('(7fe0,0010)'));
    const dump = [
      '(0002,0010) UI [1.2.840.10008.1.2.4.90]',
      ...datasetLines,
      '(7fe0,0010) OB (PixelSequence #=2)',
      '  (fffe,e000) pi (no value available)',
      '  (fffe,e000) pi =frame.j2k',
      '(fffe,e0dd) na (SequenceDelimitationItem)',
      '',
    ].join('\n');
    await writeFile(join(work, 'dataset.dump'), dump);
    await runChecked('dump2dcm', ['-q', 'dataset.dump', 'out.dcm'], { cwd: work });
    await copyFile(join(work, 'out.dcm'), dst);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The transfer syntax UID in a dcmdump of a file's meta header (used by tests). */
export async function dumpedTransferSyntax(path: string): Promise<string> {
  const { stdout } = await runChecked('dcmdump', ['-q', '-M', '-Un', '+P', '0002,0010', path]);
  const match = /\[([0-9.]+)\]/.exec(stdout);
  if (!match?.[1]) throw new FixtureError(`${path}: no TransferSyntaxUID in dcmdump output`);
  return match[1];
}

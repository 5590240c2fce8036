import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCtSeries } from './fixtures.js';
import { readFileMeta } from './part10-meta.js';
import { runChecked } from './run-command.js';
import {
  convertTransferSyntax,
  dumpedTransferSyntax,
  TRANSFER_SYNTAX_UIDS,
  type TransferSyntaxName,
} from './transfer-syntax.js';

let work: string;
let source: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'helpers-ts-'));
  const [file] = await generateCtSeries(join(work, 'src'), 1, { rows: 128, columns: 128 });
  if (!file) throw new Error('no fixture');
  source = file;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('convertTransferSyntax', () => {
  const names = Object.keys(TRANSFER_SYNTAX_UIDS) as TransferSyntaxName[];

  it.each(names)(
    '%s yields a file whose meta transfer syntax is right and that dcmdump reads whole',
    async (name) => {
      const target = join(work, `${name}.dcm`);
      await convertTransferSyntax(source, target, name);
      expect(await dumpedTransferSyntax(target)).toBe(TRANSFER_SYNTAX_UIDS[name]);
      // dcmdump exits non-zero on a dataset it cannot parse to the end (default --stop-on-error).
      const { stdout } = await runChecked('dcmdump', ['-q', '-Un', target]);
      expect(stdout).toMatch(/^\(7fe0,0010\)/m);
      expect((await readFileMeta(target)).sopInstanceUid).toBe((await readFileMeta(source)).sopInstanceUid);
    },
  );

  it('wraps a JPEG 2000 codestream (SOC ... EOC) in encapsulated pixel data', async () => {
    const target = join(work, 'j2k-check.dcm');
    await convertTransferSyntax(source, target, 'jpeg2000');
    const { stdout } = await runChecked('dcmdump', ['-q', target]);
    expect(stdout).toMatch(/\(7fe0,0010\) OB \(PixelSequence #=2\)/);
    const bytes = await readFile(target);
    const soc = bytes.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51]));
    expect(soc).toBeGreaterThan(0);
    expect(bytes.indexOf(Buffer.from([0xff, 0xd9]), soc)).toBeGreaterThan(soc);
  });
});

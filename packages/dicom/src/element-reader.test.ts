import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dcmjs from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNonBulkJson } from './dicom-json.js';
import { readElements } from './element-reader.js';
import {
  DicomParseError,
  MissingTagError,
  datasetBytes,
  inspectPart10Buffer,
  metaTransferSyntax,
} from './index.js';
import { toArrayBuffer } from './part10.js';

const run = promisify(execFile);
let dir: string;

// Every value representation the direct reader decodes, with the padding, spacing, multiplicity and
// empty values where dcmjs's rules differ between them, and sequences (nested, empty items, empty).
const RICH = String.raw`(0008,0005) CS [ISO_IR 100]
(0008,0008) CS [ORIGINAL\PRIMARY\AXIAL ]
(0008,0016) UI =CTImageStorage
(0008,0018) UI [1.2.3.4.5.6.7]
(0008,0020) DA [20240102]
(0008,002a) DT [20240102120000.5\20240103 ]
(0008,0030) TM [120000.5\1300 ]
(0008,0050) SH [ ACC 1 ]
(0008,0060) CS [CT]
(0008,0070) LO [Maker \Second ]
(0008,0081) ST [Street 1\Town  ]
(0008,0090) PN [Doe^Jane=Ideo^Name=Phon^Name]
(0008,0119) UC [ABC\DEF ]
(0008,1010) SH []
(0008,1050) PN [A^B\\C^D ]
(0008,1060) PN []
(0008,1140) SQ (Sequence with explicit length #=2)
  (fffe,e000) na (Item with explicit length #=2)
    (0008,1150) UI =CTImageStorage
    (0008,1155) UI [1.2.3.4.5.6.8]
  (fffe,e00d) na (ItemDelimitationItem for re-encoding)
  (fffe,e000) na (Item with explicit length #=0)
  (fffe,e00d) na (ItemDelimitationItem for re-encoding)
(fffe,e0dd) na (SequenceDelimitationItem for re-encod.)
(0008,1190) UR [http://example.org/a b ]
(0008,9459) FL 29.97\-1.5
(0010,0010) PN [Doe^John]
(0010,1010) AS [042Y]
(0018,0015) CS [CHEST ]
(0018,0050) DS [ 1.50 ]
(0018,0088) DS []
(0018,6020) SL -7\8
(0018,6024) US 3
(0018,9089) FD 0\0.5\-1
(0018,9306) FD 33.3
(0020,000d) UI [1.2.3.4.5]
(0020,000e) UI [1.2.3.4.5.6]
(0020,0013) IS [ 7 ]
(0020,0020) CS [L\P]
(0020,0032) DS [-179.2\-179.2\0.0]
(0020,4000) LT [Some text\with a backslash  ]
(0028,0002) US 1
(0028,0004) CS [MONOCHROME2]
(0028,0009) AT (0018,9306)\(0020,0013)
(0028,0010) US 8
(0028,0011) US 8
(0028,0100) US 16
(0028,0101) US 16
(0028,0102) US 15
(0028,0103) US 0
(0028,0106) US 0
(0028,1052) DS [-1024]
(0028,1201) OW 0000\0001
(0040,0275) SQ (Sequence with undefined length #=3)
  (fffe,e000) na (Item with undefined length #=2)
    (0040,0009) SH [STEP1]
    (0040,0008) SQ (Sequence with undefined length #=1)
      (fffe,e000) na (Item with undefined length #=1)
        (0008,0100) SH [CODE]
      (fffe,e00d) na (ItemDelimitationItem)
    (fffe,e0dd) na (SequenceDelimitationItem)
  (fffe,e00d) na (ItemDelimitationItem)
  (fffe,e000) na (Item with undefined length #=0)
  (fffe,e00d) na (ItemDelimitationItem)
(fffe,e0dd) na (SequenceDelimitationItem)
(0040,0260) SQ (Sequence with undefined length #=0)
(fffe,e0dd) na (SequenceDelimitationItem)
(0040,a160) UT [free text\more ]
(0042,0011) OB 01\02\03\04
`;

const PIXELS = `(7fe0,0010) OW ${Array.from({ length: 64 }, (_, i) => (i * 37).toString(16).padStart(4, '0')).join('\\')}\n`;

/** The nine transfer syntaxes the receiver is tested with, made the way the test helpers make them. */
const CONVERSIONS: Record<string, { uid: string; command: string; args: string[] }> = {
  'explicit-le': { uid: '1.2.840.10008.1.2.1', command: 'dcmconv', args: ['+te'] },
  'implicit-le': { uid: '1.2.840.10008.1.2', command: 'dcmconv', args: ['+ti'] },
  'explicit-be': { uid: '1.2.840.10008.1.2.2', command: 'dcmconv', args: ['+tb'] },
  deflate: { uid: '1.2.840.10008.1.2.1.99', command: 'dcmconv', args: ['+td'] },
  'jpeg-baseline': { uid: '1.2.840.10008.1.2.4.50', command: 'dcmcjpeg', args: ['+eb', '+be', '+un'] },
  'jpeg-lossless': { uid: '1.2.840.10008.1.2.4.70', command: 'dcmcjpeg', args: ['+e1', '+un'] },
  rle: { uid: '1.2.840.10008.1.2.5', command: 'dcmcrle', args: [] },
  'jpeg-ls-lossless': { uid: '1.2.840.10008.1.2.4.80', command: 'dcmcjpls', args: ['+el'] },
};
const VARIANTS: Record<string, readonly [string, ...string[]]> = {
  'explicit-undefined-lengths': ['dcmconv', '+te', '-e'],
  'implicit-undefined-lengths': ['dcmconv', '+ti', '-e'],
  'explicit-group-lengths': ['dcmconv', '+te', '+g'],
  'big-endian-undefined-lengths': ['dcmconv', '+tb', '-e'],
};

/**
 * The reference: dcmjs's reading, cleaned as the receiver always did, as it would go into JSON. dcmjs
 * rewrites Specific Character Set to ISO_IR 192 (its values are Unicode); ours keeps what the file says.
 */
function dcmjsElements(file: Buffer, characterSet = ['ISO_IR 100']): unknown {
  const parsed = dcmjs.data.DicomMessage.readFile(toArrayBuffer(file), {
    untilTag: '7FE00010',
    includeUntilTagValue: false,
  }).dict;
  const { ['7FE00010']: _stop, ...rest } = parsed;
  const json = JSON.parse(JSON.stringify(toNonBulkJson(rest))) as Record<string, unknown>;
  if (json['00080005']) json['00080005'] = { vr: 'CS', Value: characterSet };
  return json;
}

function direct(file: Buffer): unknown {
  const ts = metaTransferSyntax(file);
  return JSON.parse(JSON.stringify(readElements(datasetBytes(file, ts), ts)));
}

async function dump2dcm(name: string, dump: string): Promise<string> {
  await writeFile(join(dir, `${name}.dump`), dump);
  await run('dump2dcm', ['-q', '+te', join(dir, `${name}.dump`), join(dir, `${name}.dcm`)]);
  return join(dir, `${name}.dcm`);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dicom-elements-'));
  const rich = await dump2dcm('rich', RICH + PIXELS);
  for (const [name, { command, args }] of Object.entries(CONVERSIONS)) {
    await run(command, ['-q', ...args, rich, join(dir, `${name}.dcm`)]);
  }
  for (const [name, [command, ...args]] of Object.entries(VARIANTS)) {
    await run(command, ['-q', ...args, rich, join(dir, `${name}.dcm`)]);
  }
  // JPEG 2000 as the test helpers build it: the dataset with an encapsulated frame (not decoded here).
  await writeFile(join(dir, 'frame.j2k'), Buffer.from([0xff, 0x4f, 0xff, 0x51, 0, 0, 0, 0, 0xff, 0xd9]));
  await writeFile(
    join(dir, 'jpeg2000.dump'),
    `(0002,0010) UI [1.2.840.10008.1.2.4.90]\n${RICH}(7fe0,0010) OB (PixelSequence #=2)\n` +
      `  (fffe,e000) pi (no value available)\n  (fffe,e000) pi =${join(dir, 'frame.j2k')}\n` +
      `(fffe,e0dd) na (SequenceDelimitationItem)\n`,
  );
  await run('dump2dcm', ['-q', join(dir, 'jpeg2000.dump'), join(dir, 'jpeg2000.dcm')]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readElements', () => {
  it.each([...Object.keys(CONVERSIONS), 'jpeg2000', ...Object.keys(VARIANTS)])(
    'reads the %s file exactly as dcmjs does',
    async (name) => {
      const file = await readFile(join(dir, `${name}.dcm`));
      if (name in CONVERSIONS) expect(metaTransferSyntax(file)).toBe(CONVERSIONS[name]?.uid);
      const reference = dcmjsElements(file);
      expect(direct(file)).toEqual(reference);
      expect(JSON.parse(JSON.stringify(inspectPart10Buffer(file, { validate: true }).elements))).toEqual(
        reference,
      );
      // Sanity: the comparison covers sequences, person names, numbers and bulk data.
      expect(reference).toMatchObject({
        '00081140': { vr: 'SQ' },
        '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] },
        '00200013': { vr: 'IS', Value: [7] },
      });
    },
  );

  it.each([
    ['a private element in implicit VR', '(0009,0010) LO [CREATOR]\n(0009,1001) LO [private]\n', '+ti'],
    ['non-ASCII text', '(0010,1000) LO [M\u00fcller]\n', '+te'],
    ['an ISO 2022 character set', '', '+te'],
    ['a UN element', '(0019,0010) LO [CREATOR]\n(0019,1001) UN 01\\02\n', '+te'],
  ])('reads %s itself, as dcmjs does', async (what, extra, flag) => {
    const name = what.replace(/\W+/g, '-');
    const iso2022 = what.includes('ISO 2022');
    const dump = (iso2022 ? RICH.replace('ISO_IR 100', 'ISO 2022 IR 87') : RICH) + extra;
    const source = await dump2dcm(`${name}-src`, dump + PIXELS);
    await run('dcmconv', ['-q', flag, source, join(dir, `${name}.dcm`)]);
    const file = await readFile(join(dir, `${name}.dcm`));
    // A private element of an implicit-VR file is UN in both: no dictionary knows its VR.
    const reference = dcmjsElements(file, [iso2022 ? 'ISO 2022 IR 87' : 'ISO_IR 100']);
    expect(direct(file)).toEqual(reference);
    expect(JSON.parse(JSON.stringify(inspectPart10Buffer(file, { validate: true }).elements))).toEqual(
      reference,
    );
  });

  it('reads a file whose meta group has no group length, and names where a cut dataset ends', async () => {
    const whole = await readFile(join(dir, 'explicit-le.dcm'));
    // No (0002,0000) group length: dcmjs refuses the file; the meta group is walked instead (as dcmtk does).
    const withoutGroupLength = Buffer.concat([whole.subarray(0, 132), whole.subarray(144)]);
    expect(inspectPart10Buffer(withoutGroupLength, { validate: false }).elements).toEqual(
      inspectPart10Buffer(whole, { validate: false }).elements,
    );
    // Cut inside a value before Pixel Data (a header-only read does not check framing).
    const studyAt = whole.indexOf(Buffer.from('1.2.3.4.5\0', 'latin1'));
    const cut = whole.subarray(0, studyAt + 3);
    expect(() => direct(cut)).toThrow(/the value of \(0020,000D\) runs past the end/);
    expect(() => inspectPart10Buffer(cut, { validate: false })).toThrow(DicomParseError);
    expect(() => inspectPart10Buffer(cut, { validate: true })).toThrow(DicomParseError);
    // Cut right after Study Instance UID: framing is sound, Series Instance UID is missing.
    const seriesAt = whole.indexOf(Buffer.from([0x20, 0x00, 0x0e, 0x00]), studyAt);
    const short = whole.subarray(0, seriesAt);
    expect(direct(short)).toBeDefined();
    const err: unknown = (() => {
      try {
        return inspectPart10Buffer(short, { validate: true });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MissingTagError);
    expect((err as MissingTagError).keyword).toBe('SeriesInstanceUID');
  });
});

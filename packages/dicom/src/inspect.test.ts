import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DatasetFramer,
  DatasetStructureError,
  DicomParseError,
  MissingTagError,
  buildPart10Prefix,
  datasetOffset,
  inspectPart10Buffer,
  inspectPart10File,
} from './index.js';

const run = promisify(execFile);
let dir: string;

const DUMP = `(0008,0016) UI =CTImageStorage
(0008,0018) UI [1.2.3.4.5.6.7]
(0008,0060) CS [CT]
(0010,0010) PN [Doe^John]
(0020,000d) UI [1.2.3.4.5]
(0020,000e) UI [1.2.3.4.5.6]
(0040,0275) SQ (Sequence with undefined length #=1)
  (fffe,e000) na (Item with undefined length #=1)
    (0040,0009) SH [STEP1]
  (fffe,e00d) na (ItemDelimitationItem)
(fffe,e0dd) na (SequenceDelimitationItem)
(0028,0002) US 1
(0028,0004) CS [MONOCHROME2]
(0028,0010) US 4
(0028,0011) US 4
(0028,0100) US 16
(0028,0101) US 16
(0028,0102) US 15
(0028,0103) US 0
(7fe0,0010) OW 0001\\0002\\0003\\0004\\0005\\0006\\0007\\0008\\0009\\000a\\000b\\000c\\000d\\000e\\000f\\0010
`;

const SYNTAXES: Record<string, { flag: string; uid: string }> = {
  explicit: { flag: '+te', uid: '1.2.840.10008.1.2.1' },
  implicit: { flag: '+ti', uid: '1.2.840.10008.1.2' },
  bigEndian: { flag: '+tb', uid: '1.2.840.10008.1.2.2' },
  deflate: { flag: '+td', uid: '1.2.840.10008.1.2.1.99' },
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dicom-inspect-'));
  await writeFile(join(dir, 'ct.dump'), DUMP);
  await run('dump2dcm', ['+te', join(dir, 'ct.dump'), join(dir, 'base.dcm')]);
  for (const [name, { flag }] of Object.entries(SYNTAXES)) {
    await run('dcmconv', [flag, join(dir, 'base.dcm'), join(dir, `${name}.dcm`)]);
  }
  await run('dcmconv', ['+te', join(dir, 'base.dcm'), join(dir, 'nostudy.dcm')]);
  await run('dcmconv', ['+te', '-e', join(dir, 'base.dcm'), join(dir, 'undefined-length.dcm')]);
  await run('dcmconv', ['+ti', '-e', join(dir, 'base.dcm'), join(dir, 'undefined-length-implicit.dcm')]);
  await run('dcmodify', ['-nb', '-ea', '(0020,000d)', join(dir, 'nostudy.dcm')]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('inspectPart10File', () => {
  it.each(Object.entries(SYNTAXES))(
    'reads the UIDs and non-bulk elements of a %s file',
    async (name, { uid }) => {
      const info = await inspectPart10File(join(dir, `${name}.dcm`));
      expect(info).toMatchObject({
        sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
        sopInstanceUid: '1.2.3.4.5.6.7',
        studyInstanceUid: '1.2.3.4.5',
        seriesInstanceUid: '1.2.3.4.5.6',
        transferSyntaxUid: uid,
        modality: 'CT',
      });
      expect(info.elements['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] });
      expect(info.elements['7FE00010']).toBeUndefined();
    },
  );

  it.each(['explicit', 'implicit', 'bigEndian'])('refuses a truncated %s dataset', async (name) => {
    const whole = await readFile(join(dir, `${name}.dcm`));
    for (const cut of [1, 7, 20]) {
      expect(() => inspectPart10Buffer(whole.subarray(0, whole.length - cut), { validate: true })).toThrow(
        DicomParseError,
      );
    }
  });

  it('refuses a dataset cut inside a sequence', async () => {
    const whole = await readFile(join(dir, 'explicit.dcm'));
    const offset = datasetOffset(whole);
    const sq = whole.indexOf(Buffer.from([0x40, 0x00, 0x75, 0x02]), offset);
    expect(sq).toBeGreaterThan(offset);
    expect(() => inspectPart10Buffer(whole.subarray(0, sq + 20), { validate: true })).toThrow(
      /before the end of a value|inside/,
    );
  });

  it('refuses bytes that are not DICOM', () => {
    expect(() =>
      inspectPart10Buffer(Buffer.from('hello, this is not dicom at all'.repeat(10)), { validate: true }),
    ).toThrow(DicomParseError);
  });

  it('names a missing required element', async () => {
    const err: unknown = await inspectPart10File(join(dir, 'nostudy.dcm')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingTagError);
    expect((err as MissingTagError).keyword).toBe('StudyInstanceUID');
  });
});

/** `element` spliced into the explicit VR fixture's dataset before Patient's Name (after group 0008). */
async function withElementBeforeName(element: Buffer): Promise<Buffer> {
  const whole = await readFile(join(dir, 'explicit.dcm'));
  const at = whole.indexOf(Buffer.from([0x10, 0x00, 0x10, 0x00, 0x50, 0x4e]), datasetOffset(whole));
  return Buffer.concat([whole.subarray(0, at), element, whole.subarray(at)]);
}

function explicitHeader(group: number, element: number, vr: string, length: number): Buffer {
  const long = !['LO', 'CS'].includes(vr);
  const header = Buffer.alloc(long ? 12 : 8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(element, 2);
  header.write(vr, 4, 'latin1');
  if (long) header.writeUInt32LE(length, 8);
  else header.writeUInt16LE(length, 6);
  return header;
}

describe('a VR no edition of the standard defines yet', () => {
  // PS3.5 6.2: every VR a later edition adds is encoded as OB and UN are (2 reserved bytes, a 4-byte
  // length). dcmtk frames it so ("Non-standard VR ... assuming 4 byte length field") and stores it.
  const creator = Buffer.concat([explicitHeader(0x0009, 0x0010, 'LO', 6), Buffer.from('FUTURE')]);

  it('is framed with a 4-byte length and read as UN, with the elements after it', async () => {
    const value = Buffer.from('a future value', 'latin1');
    const file = await withElementBeforeName(
      Buffer.concat([creator, explicitHeader(0x0009, 0x1001, 'ZZ', value.length), value]),
    );
    const info = inspectPart10Buffer(file, { validate: true });
    expect(info.elements['00091001']).toEqual({ vr: 'UN' });
    expect(info.elements['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] });
    const dataset = file.subarray(datasetOffset(file));
    const framer = new DatasetFramer('1.2.840.10008.1.2.1');
    for (let at = 0; at < dataset.length; at += 5) framer.push(dataset.subarray(at, at + 5));
    framer.end();
    expect(framer.pixelDataOffset).toBe(dataset.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00])));
    await writeFile(join(dir, 'future-vr.dcm'), file);
    const { stdout, stderr } = await run('dcmdump', [join(dir, 'future-vr.dcm')]);
    expect(stderr).toMatch(/Non-standard VR 'ZZ'.*assuming 4 byte length field/);
    expect(stdout).toMatch(/\(0010,0010\) PN \[Doe\^John\]/);
  });

  it('with an undefined length, holds items in implicit VR as UN does', async () => {
    const item = Buffer.concat([
      Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0x08, 0x00, 0x00, 0x01, 4, 0, 0, 0]),
      Buffer.from('ABCD'),
      Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]),
      Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]),
    ]);
    const file = await withElementBeforeName(
      Buffer.concat([creator, explicitHeader(0x0009, 0x1001, 'ZZ', 0xffffffff), item]),
    );
    const info = inspectPart10Buffer(file, { validate: true });
    expect(info.elements['00091001']).toEqual({ vr: 'UN' });
    expect(info.elements['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] });
  });

  it('still refuses a dataset whose unknown-VR element runs past the end', async () => {
    const file = await withElementBeforeName(
      Buffer.concat([creator, explicitHeader(0x0009, 0x1001, 'ZZ', 0x00ffffff)]),
    );
    expect(() => inspectPart10Buffer(file, { validate: true })).toThrow(DicomParseError);
  });
});

describe('DatasetFramer', () => {
  it.each(['explicit', 'implicit', 'bigEndian', 'undefined-length', 'undefined-length-implicit'])(
    'accepts the whole %s dataset fed in any chunking and finds Pixel Data',
    async (name) => {
      const file = await readFile(join(dir, `${name}.dcm`));
      const dataset = file.subarray(datasetOffset(file));
      const ts = inspectPart10Buffer(file, { validate: true }).transferSyntaxUid;
      const pixelData = dataset.lastIndexOf(
        ts === '1.2.840.10008.1.2.2'
          ? Buffer.from([0x7f, 0xe0, 0x00, 0x10])
          : Buffer.from([0xe0, 0x7f, 0x10, 0x00]),
      );
      for (const size of [1, 3, 7, 64, dataset.length]) {
        const framer = new DatasetFramer(ts);
        for (let at = 0; at < dataset.length; at += size) framer.push(dataset.subarray(at, at + size));
        framer.end();
        expect(framer.pixelDataOffset).toBe(pixelData);
        expect(framer.bytesSeen).toBe(dataset.length);
      }
    },
  );

  // A cut between two top-level elements leaves a shorter but well-framed dataset; a cut inside the
  // undefined-length sequence or inside a value never does.
  it.each(['undefined-length', 'undefined-length-implicit'])(
    'refuses a %s dataset cut inside a sequence or value',
    async (name) => {
      const file = await readFile(join(dir, `${name}.dcm`));
      const dataset = file.subarray(datasetOffset(file));
      const ts = inspectPart10Buffer(file, { validate: true }).transferSyntaxUid;
      const sqStart = dataset.indexOf(Buffer.from([0x40, 0x00, 0x75, 0x02]));
      const sqEnd = dataset.indexOf(Buffer.from([0xfe, 0xff, 0xdd, 0xe0])) + 8;
      const pixelData = dataset.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
      expect(sqStart).toBeGreaterThan(0);
      const cuts = [
        ...Array.from({ length: sqEnd - sqStart - 1 }, (_, i) => sqStart + 1 + i),
        pixelData + 3,
        dataset.length - 1,
      ];
      for (const cut of cuts) {
        const framer = new DatasetFramer(ts);
        expect(() => {
          framer.push(dataset.subarray(0, cut));
          framer.end();
        }, `cut at ${cut}`).toThrow(DatasetStructureError);
      }
    },
  );
});

describe('buildPart10Prefix', () => {
  it.each(Object.entries(SYNTAXES))(
    'gives a file dcmtk reads when the %s dataset bytes are appended',
    async (name, { uid }) => {
      const original = await readFile(join(dir, `${name}.dcm`));
      const prefix = buildPart10Prefix({
        sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
        sopInstanceUid: '1.2.3.4.5.6.7',
        transferSyntaxUid: uid,
        sourceAeTitle: 'SENDER',
      });
      const rebuilt = Buffer.concat([prefix, original.subarray(datasetOffset(original))]);
      const path = join(dir, `rebuilt-${name}.dcm`);
      await writeFile(path, rebuilt);
      const { stdout } = await run('dcmdump', ['-q', path]);
      expect(stdout).toContain('1.2.3.4.5.6');
      expect(stdout).toContain('SENDER');
      expect(inspectPart10Buffer(rebuilt, { validate: true }).transferSyntaxUid).toBe(uid);
    },
  );
});

// Corpus cases about encodings: every transfer syntax dcmtk writes, encapsulated pixel data with and
// without a Basic Offset Table, dataset files without a meta header, group lengths, trailing padding.
import { join } from 'node:path';
import {
  convertTransferSyntax,
  minimalJ2kCodestream,
  newUid,
  runChecked,
  type TransferSyntaxName,
} from '@dicomflow/test-helpers';
import { casePath, named, SIDE, type Builder } from './corpus-case.js';
import { withoutTags } from './dataset-dump.js';
import { offsetTableLength } from './wire-probes.js';

const SECONDARY_CAPTURE_MULTIFRAME_WORD = '1.2.840.10008.5.1.4.1.1.7.3';
const FRAMES = 4;

/** The transfer syntaxes dcmtk writes through the test helpers' converter. */
const SYNTAXES: readonly [TransferSyntaxName, string][] = [
  ['explicit-le', 'explicit VR little endian'],
  ['implicit-le', 'implicit VR little endian'],
  ['explicit-be', 'explicit VR big endian (retired)'],
  ['deflate', 'deflated explicit VR little endian'],
  ['jpeg-baseline', 'JPEG baseline (process 1), 16-bit input scaled to 8'],
  ['jpeg-lossless', 'JPEG lossless SV1 (process 14, first-order prediction)'],
  ['jpeg-ls-lossless', 'JPEG-LS lossless'],
  ['jpeg2000', 'JPEG 2000 lossless (a codestream of our own: dcmtk in Debian has no J2K encoder)'],
  ['rle', 'RLE lossless'],
];

/** dcmcjpeg and dcmcjpls modes the converter does not cover (lossy ones keep their UID: +un). */
const CODECS: readonly [string, string, readonly string[], string][] = [
  ['ts-jpeg-extended', 'dcmcjpeg', ['+ee', '+un'], 'JPEG extended (process 2 & 4)'],
  ['ts-jpeg-spectral', 'dcmcjpeg', ['+es', '+be', '+un'], 'JPEG spectral selection (retired)'],
  ['ts-jpeg-progressive', 'dcmcjpeg', ['+ep', '+be', '+un'], 'JPEG full progression (retired)'],
  ['ts-jpeg-lossless-p14', 'dcmcjpeg', ['+el', '+un'], 'JPEG lossless process 14 (any predictor)'],
  ['ts-jpeg-ls-near-lossless', 'dcmcjpls', ['+en'], 'JPEG-LS near-lossless'],
];

const syntaxCases = SYNTAXES.map(([ts, about]) =>
  named(`ts-${ts}`, async (b, name) => {
    const file = casePath(b, name);
    await convertTransferSyntax(b.source(), file, ts);
    return { about, file, sender: 'storescu', valid: true };
  }),
);

const codecCases = CODECS.map(([caseName, tool, args, about]) =>
  named(caseName, async (b, name) => {
    const file = casePath(b, name);
    await runChecked(tool, ['-q', ...args, b.source(), file]);
    return { about, file, sender: 'storescu', valid: true };
  }),
);

/**
 * Encapsulated syntaxes dcmtk accepts but cannot write: the fixture with its pixel data replaced by one
 * fragment, an empty offset table before it. Nobody decodes the fragment, so for video it is only a start
 * code and filler: what matters is that each syntax is negotiated and its pixel sequence kept as sent.
 */
const FOREIGN_ENCAPSULATED: readonly [string, string, string][] = [
  ['ts-jpeg2000-lossy', '1.2.840.10008.1.2.4.91', 'JPEG 2000 (lossy)'],
  ['ts-mpeg2-main', '1.2.840.10008.1.2.4.100', 'MPEG-2 Main Profile @ Main Level'],
  ['ts-mpeg4-high', '1.2.840.10008.1.2.4.102', 'MPEG-4 AVC/H.264 High Profile / Level 4.1'],
  ['ts-mpeg4-2d', '1.2.840.10008.1.2.4.104', 'MPEG-4 AVC/H.264 High Profile for 2D video'],
  ['ts-mpeg4-stereo', '1.2.840.10008.1.2.4.106', 'MPEG-4 AVC/H.264 Stereo High Profile'],
  ['ts-hevc-main', '1.2.840.10008.1.2.4.107', 'HEVC/H.265 Main Profile'],
  ['ts-hevc-main10', '1.2.840.10008.1.2.4.108', 'HEVC/H.265 Main 10 Profile'],
];

const VIDEO_LIKE = Buffer.concat([
  Buffer.from([0, 0, 0, 1, 0x40, 0x01, 0x0c, 0x01]),
  Buffer.alloc(1016, 0xa5),
]);

const foreignEncapsulatedCases = FOREIGN_ENCAPSULATED.map(([caseName, syntax, about]) =>
  named(caseName, async (b, name) => {
    const fragment = `${name}-${newUid()}.bin`;
    const j2k = syntax === '1.2.840.10008.1.2.4.91';
    await b.work.writeValue(fragment, j2k ? minimalJ2kCodestream(SIDE, SIDE, 16) : VIDEO_LIKE);
    const file = casePath(b, name);
    const lines = [
      ...withoutTags(await b.work.datasetLines(b.source()), ['7fe0,0010']),
      '(7fe0,0010) OB (PixelSequence #=2)',
      '  (fffe,e000) pi (no value available)',
      `  (fffe,e000) pi =${fragment}`,
      '(fffe,e0dd) na (SequenceDelimitationItem)',
    ];
    await b.work.build(lines, file, [], syntax);
    return { about, file, sender: 'storescu', valid: true };
  }),
);

/** A native 16-bit multi-frame instance, the input of the encapsulated cases. */
async function multiFrame(b: Builder): Promise<string> {
  const lines = withoutTags(await b.work.datasetLines(b.source()), ['0008,0016', '7fe0,0010']);
  const frames = Buffer.alloc(FRAMES * SIDE * SIDE * 2);
  for (let i = 0; i < frames.length / 2; i++) frames.writeUInt16LE((i * 7) % 4096, i * 2);
  const name = `frames-${newUid()}.raw`;
  await b.work.writeValue(name, frames);
  const file = join(b.work.dir, `${name}.dcm`);
  const extra = [
    `(0008,0016) UI [${SECONDARY_CAPTURE_MULTIFRAME_WORD}]`,
    `(0028,0008) IS [${FRAMES}]`,
    `(7fe0,0010) OW =${name}`,
  ];
  await b.work.build([...lines, ...extra], file, ['+te']);
  return file;
}

const ENCAPSULATED: readonly [string, readonly string[], string, boolean][] = [
  ['encap-offset-table', ['+ot'], 'a frame per fragment, Basic Offset Table filled', true],
  ['encap-no-offset-table', ['-ot'], 'a frame per fragment, Basic Offset Table empty', false],
  ['encap-fragments-offset-table', ['+fs', '1', '+ot'], 'frames in 1 KiB fragments, offset table', true],
  ['encap-fragments-no-offset-table', ['+fs', '1', '-ot'], 'frames in 1 KiB fragments, none', false],
];

const encapsulatedCases = ENCAPSULATED.map(([caseName, args, about, table]) =>
  named(caseName, async (b, name) => {
    const file = casePath(b, name);
    await runChecked('dcmcjpeg', ['-q', '+e1', ...args, await multiFrame(b), file]);
    return {
      about: `${FRAMES}-frame JPEG lossless: ${about}`,
      file,
      sender: 'storescu',
      valid: true,
      onWire: (dataset: Buffer) => offsetTableLength(dataset) > 0 === table,
    };
  }),
);

/** Dataset files without a Part-10 meta header; storescu detects their syntax and proposes it. */
const NO_META: readonly [string, string, string, string][] = [
  ['no-meta-explicit-le', '+te', '-xe', 'explicit VR little endian'],
  ['no-meta-implicit-le', '+ti', '-xi', 'implicit VR little endian'],
  ['no-meta-explicit-be', '+tb', '-xb', 'explicit VR big endian'],
];

const noMetaCases = NO_META.map(([caseName, syntax, propose, about]) =>
  named(caseName, async (b, name) => {
    const file = casePath(b, name);
    await runChecked('dcmconv', ['-q', '-F', syntax, b.source(), file]);
    return {
      about: `a dataset file without meta header (${about}), sent by a peer proposing its syntax`,
      file,
      sender: 'storescu',
      propose: 'storescu',
      storescuArgs: [propose],
      valid: true,
    };
  }),
);

const otherCases = [
  named('group-lengths', async (b, name) => {
    const file = casePath(b, name);
    await runChecked('dcmconv', ['-q', '+g', b.source(), file]);
    return { about: 'group length elements', file, sender: 'storescu', valid: true };
  }),
  named('trailing-padding', async (b, name) => {
    const file = casePath(b, name);
    await runChecked('dcmconv', ['-q', '+p', '1024', '8', b.source(), file]);
    return { about: 'dataset trailing padding (FFFC,FFFC)', file, sender: 'storescu', valid: true };
  }),
  named('propose-combined', async (b, name) => {
    const file = casePath(b, name);
    await convertTransferSyntax(b.source(), file, 'implicit-le');
    return {
      about: 'storescu proposing every uncompressed syntax in one context (+C); it converts if it must',
      file,
      sender: 'storescu',
      propose: 'storescu',
      storescuArgs: ['+C'],
      valid: true,
    };
  }),
  named('propose-jpeg-lossless', async (b, name) => {
    const file = casePath(b, name);
    await convertTransferSyntax(b.source(), file, 'jpeg-lossless');
    return {
      about: "storescu's own JPEG lossless proposal (-xs) instead of the file's syntax alone",
      file,
      sender: 'storescu',
      propose: 'storescu',
      storescuArgs: ['-xs'],
      valid: true,
    };
  }),
  named('sender-aborts', async (b, name) => {
    const file = casePath(b, name);
    await runChecked('dcmconv', ['-q', '+te', b.source(), file]);
    return {
      about: 'the sender ends its association with an A-ABORT after the store instead of a release',
      file,
      sender: 'storescu',
      storescuArgs: ['--abort'],
      valid: true,
    };
  }),
  named('small-pdus', async (b, name) => {
    const file = casePath(b, name);
    await runChecked('dcmcjpeg', ['-q', '+e1', '+fs', '1', await multiFrame(b), file]);
    return {
      about: 'fragmented pixel data sent in PDUs of 4 KiB, the smallest storescu sends',
      file,
      sender: 'storescu',
      storescuArgs: ['--max-send-pdu', '4096'],
      valid: true,
    };
  }),
];

/** Cases about encodings, in a fixed order. */
export const ENCODING_CASES = [
  ...syntaxCases,
  ...codecCases,
  ...foreignEncapsulatedCases,
  ...encapsulatedCases,
  ...noMetaCases,
  ...otherCases,
];

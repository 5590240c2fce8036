// Corpus cases about what a dataset holds: sequences and items of undefined length (in every
// uncompressed encoding), long sequences, private elements of every VR, very long values, UN.
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import {
  newUid,
  readFileMeta,
  runChecked,
  withLongText,
  withSopClass,
  WORDS_THEN_ENDS,
} from '@dicomflow/test-helpers';
import { casePath, named, type CaseBuilder, type CorpusCase } from './corpus-case.js';
import { sequenceLines, withoutTags } from './dataset-dump.js';
import { hasUndefinedLengthSequence } from './wire-probes.js';

const PRIVATE_SOP_CLASS = '1.2.826.0.1.3680043.9.9999.2';
const MIB = 1024 * 1024;
/** Items of the long sequence: their 1.7 MB put Pixel Data past the receiver's 1 MiB header buffer. */
const MANY_ITEMS = 20_000;

/** References to `items` instances, an empty sequence, an empty item, nested and private sequences. */
function sequenceDump(items: number): string[] {
  const reference = (i: number): string[] => [
    '(0008,1150) UI [1.2.840.10008.5.1.4.1.1.2]',
    `(0008,1155) UI [1.2.826.0.1.3680043.10.1473.77.${i}]`,
  ];
  return [
    ...sequenceLines(
      '0008,1140',
      Array.from({ length: items }, (_, i) => reference(i + 1)),
    ),
    '(0008,1115) SQ (Sequence with explicit length #=0)',
    '(fffe,e0dd) na (SequenceDelimitationItem)',
    ...sequenceLines('0008,1250', [[]]),
    ...sequenceLines('0040,a730', [
      ['(0040,a010) CS [CONTAINS]', ...sequenceLines('0040,a730', [['(0040,a160) UT [nested text]']])],
    ]),
    '(0029,0010) LO [DICOMFLOW NESTED]',
    ...sequenceLines('0029,1001', [['(0029,0010) LO [DICOMFLOW NESTED]', '(0029,1002) LO [inner value]']]),
  ];
}

/**
 * PS3.5 A.5: a deflated bit stream of odd length is padded with one NUL byte. dump2dcm leaves it odd; a
 * sender must not (dcmtk's storescp aborts on the odd PDV: "Odd Fragment Length").
 */
async function padDeflatedDataset(file: string): Promise<void> {
  const bytes = await readFile(file);
  if ((bytes.length - (await readFileMeta(file)).datasetOffset) % 2 === 1)
    await writeFile(file, Buffer.concat([bytes, Buffer.alloc(1)]));
}

function sequenceCase(
  caseName: string,
  about: string,
  items: number,
  options: readonly string[],
  sender: CorpusCase['sender'],
): CaseBuilder {
  return named(caseName, async (b, name) => {
    const file = casePath(b, name);
    await b.work.build([...(await b.work.datasetLines(b.source())), ...sequenceDump(items)], file, options);
    if (options.includes('+td')) await padDeflatedDataset(file);
    // storescu sends explicit lengths whatever the file holds; the raw sender sends the file's bytes.
    const probe = options.includes('-e') && sender === 'raw' && !options.includes('+td');
    return { about, file, sender, valid: true, ...(probe ? { onWire: hasUndefinedLengthSequence } : {}) };
  });
}

const UNDEFINED = 'sequences and items of undefined length: nested, private, empty ones';
const sequenceCases = [
  sequenceCase('sq-undefined-lengths', UNDEFINED, 3, ['+te', '-e'], 'raw'),
  sequenceCase('sq-undefined-lengths-implicit', `${UNDEFINED}; implicit VR`, 3, ['+ti', '-e'], 'raw'),
  sequenceCase('sq-undefined-lengths-big-endian', `${UNDEFINED}; big endian`, 3, ['+tb', '-e'], 'raw'),
  sequenceCase('sq-undefined-lengths-deflate', `${UNDEFINED}; deflated`, 3, ['+td', '-e'], 'raw'),
  sequenceCase(
    'sq-undefined-lengths-storescu',
    `${UNDEFINED}, in a file given to storescu (which sends explicit lengths)`,
    3,
    ['+te', '-e'],
    'storescu',
  ),
  sequenceCase('sq-many-items', `a sequence of ${MANY_ITEMS} items`, MANY_ITEMS, ['+te'], 'storescu'),
  sequenceCase(
    'sq-many-items-undefined',
    `a sequence of ${MANY_ITEMS} items of undefined length`,
    MANY_ITEMS,
    ['+te', '-e'],
    'raw',
  ),
];

/** Private elements of three creator blocks (one the last, xxFF), of every VR, one of 1 MiB. */
function privateCase(caseName: string, about: string, options: readonly string[]): CaseBuilder {
  return named(caseName, async (b, name) => {
    const blob = `private-${newUid()}.bin`;
    await b.work.writeValue(blob, Buffer.alloc(MIB, 0xa5));
    const file = casePath(b, name);
    const lines = withoutTags(await b.work.datasetLines(b.source()), ['0008,103e']);
    await b.work.build(
      [
        ...lines,
        '(0008,0119) UC [a code value longer than LO allows, as UC: long, of any length up to 2^32-2 bytes]',
        '(0008,0120) UR [urn:oid:1.2.826.0.1.3680043.10.1473]',
        '(0008,103e) UN 53\\45\\52\\49\\45\\53',
        '(0009,0010) LO [DICOMFLOW TEST]',
        '(0009,00ff) LO [DICOMFLOW LAST BLOCK]',
        '(0009,1001) LO [private text]',
        '(0009,1002) OB 00\\01\\02\\03',
        '(0009,1003) UN 01\\02\\03\\04',
        '(0009,1004) DS [1.5\\-2.25]',
        ...sequenceLines('0009,1005', [['(0009,0010) LO [DICOMFLOW TEST]', '(0009,1001) LO [nested]']]),
        `(0009,1010) OB =${blob}`,
        '(0009,1020) SV -1234567890123',
        '(0009,1021) UV 1234567890123',
        '(0009,1022) OV 0102030405060708',
        '(0009,1023) OD 1.5\\2.5',
        '(0009,1024) OF 1.5\\2.5',
        '(0009,1025) OL 1\\2',
        '(0009,1026) FL 1.25',
        '(0009,1027) AT (0010,0010)\\(0008,0018)',
        '(0009,ff01) LO [in the last block]',
        '(0011,0010) LO [OTHER VENDOR 1.0]',
        '(0011,1001) SL 12345',
        '(0011,1002) FD 3.25',
      ],
      file,
      options,
    );
    return { about, file, sender: 'storescu', valid: true };
  });
}

/** One explicit VR little endian element with a 2-byte length. */
function shortElement(group: number, element: number, vr: string, value: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(element, 2);
  header.write(vr, 4, 'latin1');
  header.writeUInt16LE(value.length, 6);
  return Buffer.concat([header, value]);
}

/** One implicit VR little endian element. */
function implicitElement(group: number, element: number, value: string): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(element, 2);
  header.writeUInt32LE(value.length, 4);
  return Buffer.concat([header, Buffer.from(value, 'latin1')]);
}

/**
 * Copies a fixture with `elements` (group 0029, after the fixture's last group before Pixel Data) spliced
 * in before its Pixel Data: for encodings dcmtk does not write itself.
 */
async function withElementsBeforePixelData(src: string, dst: string, elements: Buffer): Promise<void> {
  const bytes = await readFile(src);
  const pixelData = bytes.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57]));
  if (pixelData < (await readFileMeta(src)).datasetOffset) throw new Error(`${src}: no Pixel Data`);
  await writeFile(dst, Buffer.concat([bytes.subarray(0, pixelData), elements, bytes.subarray(pixelData)]));
}

const ITEM = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]);
const ITEM_END = Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]);
const SEQUENCE_END = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);

/**
 * A private sequence as UN of undefined length (PS3.5 6.2.2, CP-246): its items are implicit VR little
 * endian inside an explicit VR dataset. dcmtk writes that only when it forwards what it could not identify.
 */
const UNDEFINED_LENGTH_UN = Buffer.concat([
  shortElement(0x0029, 0x0010, 'LO', Buffer.from('DICOMFLOW UN', 'latin1')),
  Buffer.from([0x29, 0x00, 0x01, 0x10, 0x55, 0x4e, 0, 0, 0xff, 0xff, 0xff, 0xff]),
  ITEM,
  implicitElement(0x0008, 0x0100, 'ABCD'),
  implicitElement(0x0008, 0x0102, 'DCM '),
  ITEM_END,
  SEQUENCE_END,
]);

/**
 * An element of a VR this standard does not define yet ('ZZ'): PS3.5 6.2 has every future VR take the
 * form of OB or UN (2 reserved bytes, a 4-byte length), and dcmtk reads it so.
 */
const FUTURE_VR = Buffer.concat([
  shortElement(0x0029, 0x0010, 'LO', Buffer.from('DICOMFLOW FUTURE', 'latin1')),
  Buffer.from([0x29, 0x00, 0x01, 0x10, 0x5a, 0x5a, 0, 0, 12, 0, 0, 0]),
  Buffer.from('future value', 'latin1'),
]);

/** A copy of `src` with a new, odd-length SOP Instance UID padded with a space in the dataset. */
async function withSpacePaddedUid(src: string, dst: string): Promise<void> {
  let uid = newUid();
  if (uid.length % 2 === 0) uid = `${uid}1`;
  await copyFile(src, dst);
  // dcmodify writes the new UID into the meta group too: the raw sender's C-STORE names it unpadded.
  await runChecked('dcmodify', ['-q', '-nb', '-i', `(0008,0018)=${uid}`, dst]);
  const bytes = await readFile(dst);
  const padded = Buffer.from(`${uid}\0`, 'latin1');
  // The UID is new: its only NUL-padded occurrence after the meta group is the dataset's.
  const value = bytes.indexOf(padded, (await readFileMeta(dst)).datasetOffset);
  if (value < 0) throw new Error(`${dst}: no NUL-padded SOP Instance UID`);
  bytes[value + padded.length - 1] = 0x20;
  await writeFile(dst, bytes);
}

const otherCases = [
  privateCase('private-tags', 'private elements of every VR (a 1 MiB OB), UC, UR, UN; 3 creators', ['+te']),
  privateCase('private-tags-implicit', 'the same in implicit VR, where no reader knows their VRs', ['+ti']),
  named('private-sop-class', async (b, name) => {
    const file = casePath(b, name);
    await withSopClass(b.source(), file, PRIVATE_SOP_CLASS);
    return { about: 'a private SOP class', file, sender: 'storescu', valid: true };
  }),
  named('un-undefined-length', async (b, name) => {
    const file = casePath(b, name);
    await withElementsBeforePixelData(b.source(), file, UNDEFINED_LENGTH_UN);
    return {
      about: 'a private sequence as UN of undefined length (implicit VR inside explicit)',
      file,
      sender: 'raw',
      valid: true,
      onWire: hasUndefinedLengthSequence,
    };
  }),
  named('future-vr', async (b, name) => {
    const file = casePath(b, name);
    await withElementsBeforePixelData(b.source(), file, FUTURE_VR);
    return { about: 'an element of a VR not defined yet', file, sender: 'raw', valid: true };
  }),
  named('uid-space-padded', async (b, name) => {
    const file = casePath(b, name);
    await withSpacePaddedUid(b.source(), file);
    return {
      about: 'SOP Instance UID padded with a space, not NUL (a lapse of many senders that readers forgive)',
      file,
      sender: 'raw',
      valid: true,
    };
  }),
  named('long-ut', async (b, name) => {
    const file = casePath(b, name);
    await withLongText(b.source(), file, '(0040,a160)', WORDS_THEN_ENDS);
    return { about: 'a 1 MiB UT value', file, sender: 'storescu', valid: true };
  }),
  named('long-lt-implicit', async (b, name) => {
    const file = casePath(b, name);
    await withLongText(b.source(), file, '(0020,4000)', WORDS_THEN_ENDS, { implicit: true });
    return {
      about: 'a 1 MiB LT value (implicit VR: explicit LT has a 16-bit length)',
      file,
      sender: 'storescu',
      valid: true,
    };
  }),
  named('empty-values', async (b, name) => {
    const file = casePath(b, name);
    const lines = withoutTags(await b.work.datasetLines(b.source()), ['0010,0030', '0010,0040']);
    const empty = ['(0008,0001) UL 0', '(0010,0030) DA []', '(0010,0040) CS []', '(0010,1010) AS []'];
    await b.work.build([...lines, ...empty, '(0020,4000) LT []'], file, ['+te']);
    return { about: 'zero-length values, retired Length to End', file, sender: 'storescu', valid: true };
  }),
];

/** Cases about dataset contents, in a fixed order. */
export const ELEMENT_CASES = [...sequenceCases, ...otherCases];

import { describe, expect, it } from 'vitest';
import { readElements } from './element-reader.js';
import { TransferSyntax } from './uids.js';

const ESC = 0x1b;

/** One explicit-VR little-endian element with a short (16-bit) length, padded to even length with a space. */
function element(group: number, elem: number, vr: string, value: Buffer): Buffer {
  const padded = value.length % 2 === 0 ? value : Buffer.concat([value, Buffer.from(' ')]);
  const header = Buffer.alloc(8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(elem, 2);
  header.write(vr, 4, 'latin1');
  header.writeUInt16LE(padded.length, 6);
  return Buffer.concat([header, padded]);
}

/** Bytes from ASCII text and byte values: strings are taken as they are, numbers as bytes. */
function bytes(...parts: Array<string | number[]>): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}

/** What the reader makes of a Patient's Name and a Study Description under `charset`. */
function read(charset: string, name: Buffer, description = Buffer.alloc(0)) {
  const dataset = Buffer.concat([
    element(0x0008, 0x0005, 'CS', Buffer.from(charset, 'latin1')),
    element(0x0008, 0x1030, 'LO', description),
    element(0x0010, 0x0010, 'PN', name),
  ]);
  const elements = readElements(dataset, TransferSyntax.ExplicitVRLittleEndian);
  return { name: elements['00100010'], description: elements['00081030'], charset: elements['00080005'] };
}

const esc = (...seq: string[]): number[] => [ESC, ...Buffer.from(seq.join(''), 'latin1')];
const G0_JIS_X0208 = esc('$B');
const G0_ASCII = esc('(B');
const G0_JIS_ROMAN = esc('(J');
const G1_KS_X1001 = esc('$)C');
const G1_GB2312 = esc('$)A');

describe('text decoding (PS3.5 6.1)', () => {
  it('reads PS3.5 Annex H example 1: ISO 2022 IR 87, Japanese kanji and hiragana', () => {
    // Yamada^Tarou=山田^太郎=やまだ^たろう
    const name = bytes(
      'Yamada^Tarou=',
      G0_JIS_X0208,
      [0x3b, 0x33, 0x45, 0x44],
      G0_ASCII,
      '^',
      G0_JIS_X0208,
      [0x42, 0x40, 0x4f, 0x3a],
      G0_ASCII,
      '=',
      G0_JIS_X0208,
      [0x24, 0x64, 0x24, 0x5e, 0x24, 0x40],
      G0_ASCII,
      '^',
      G0_JIS_X0208,
      [0x24, 0x3f, 0x24, 0x6d, 0x24, 0x26],
      G0_ASCII,
    );
    const out = read('\\ISO 2022 IR 87', name);
    expect(out.name).toEqual({
      vr: 'PN',
      Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }],
    });
    // The index keeps the character set the instance declared.
    expect(out.charset).toEqual({ vr: 'CS', Value: ['', 'ISO 2022 IR 87'] });
  });

  it('reads PS3.5 Annex H example 2: ISO 2022 IR 13 and IR 87, half-width katakana and kanji', () => {
    // ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう
    const name = bytes(
      [0xd4, 0xcf, 0xc0, 0xde],
      '^',
      [0xc0, 0xdb, 0xb3],
      '=',
      G0_JIS_X0208,
      [0x3b, 0x33, 0x45, 0x44],
      G0_JIS_ROMAN,
      '^',
      G0_JIS_X0208,
      [0x42, 0x40, 0x4f, 0x3a],
      G0_JIS_ROMAN,
      '=',
      G0_JIS_X0208,
      [0x24, 0x64, 0x24, 0x5e, 0x24, 0x40],
      G0_JIS_ROMAN,
      '^',
      G0_JIS_X0208,
      [0x24, 0x3f, 0x24, 0x6d, 0x24, 0x26],
      G0_JIS_ROMAN,
    );
    expect(read('ISO 2022 IR 13\\ISO 2022 IR 87', name).name).toEqual({
      vr: 'PN',
      Value: [{ Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }],
    });
  });

  it('reads PS3.5 Annex I: ISO 2022 IR 149, Korean hangul and hanja', () => {
    // Hong^Gildong=洪^吉洞=홍^길동
    const name = bytes(
      'Hong^Gildong=',
      G1_KS_X1001,
      [0xfb, 0xf3],
      '^',
      G1_KS_X1001,
      [0xd1, 0xce, 0xd4, 0xd7],
      '=',
      G1_KS_X1001,
      [0xc8, 0xab],
      '^',
      G1_KS_X1001,
      [0xb1, 0xe6, 0xb5, 0xbf],
    );
    expect(read('\\ISO 2022 IR 149', name).name).toEqual({
      vr: 'PN',
      Value: [{ Alphabetic: 'Hong^Gildong', Ideographic: '洪^吉洞', Phonetic: '홍^길동' }],
    });
  });

  it('reads PS3.5 Annex J: GB18030, and ISO 2022 IR 58 (GB 2312)', () => {
    // Wang^XiaoDong=王^小东=
    const gb18030 = bytes('Wang^XiaoDong=', [0xcd, 0xf5], '^', [0xd0, 0xa1, 0xb6, 0xab], '=');
    expect(read('GB18030', gb18030).name).toEqual({
      vr: 'PN',
      Value: [{ Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小东' }],
    });
    // Zhang^XiaoDong=张^小东=
    const iso2022 = bytes(
      'Zhang^XiaoDong=',
      G1_GB2312,
      [0xd5, 0xc5],
      '^',
      G1_GB2312,
      [0xd0, 0xa1, 0xb6, 0xab],
      '=',
    );
    expect(read('\\ISO 2022 IR 58', iso2022).name).toEqual({
      vr: 'PN',
      Value: [{ Alphabetic: 'Zhang^XiaoDong', Ideographic: '张^小东' }],
    });
  });

  it.each([
    ['ISO_IR 100', [0x4d, 0xfc, 0x6c, 0x6c, 0x65, 0x72], 'Müller'],
    ['ISO_IR 101', [0x57, 0xea, 0x73, 0x61], 'Węsa'],
    ['ISO_IR 144', [0xbb, 0xee, 0xda, 0xe1, 0xde, 0xd2], 'Люксов'],
    ['ISO_IR 126', [0xc4, 0xe9, 0xef, 0xed, 0xf5, 0xf3, 0xe9, 0xef, 0xf2], 'Διονυσιος'],
    ['ISO_IR 138', [0xf9, 0xf8, 0xe5, 0xef], 'שרון'],
    ['ISO_IR 127', [0xe2, 0xc8, 0xc7, 0xe6, 0xe6], 'قبانن'],
    ['ISO_IR 166', [0xb9, 0xd2, 0xc2], 'นาย'],
    ['ISO_IR 148', [0xc7, 0xfd, 0x6b], 'Çık'],
    ['ISO_IR 192', [...Buffer.from('Wang^XiaoDong=王^小东', 'utf8')], 'Wang^XiaoDong=王^小东'],
    ['GBK', [0xcd, 0xf5, 0xd0, 0xa1, 0xb6, 0xab], '王小东'],
  ])('reads %s', (charset, raw, text) => {
    const out = read(charset, Buffer.alloc(0), Buffer.from(raw));
    expect(out.description).toEqual({ vr: 'LO', Value: [text] });
  });

  it('keeps a value that is not valid in its character set as Latin-1, marked Undecodable', () => {
    const invalidUtf8 = Buffer.from([0x41, 0xc3, 0x28, 0x42]);
    expect(read('ISO_IR 192', Buffer.alloc(0), invalidUtf8).description).toEqual({
      vr: 'LO',
      Value: ['A\u00c3(B'],
      Undecodable: true,
    });
    // An unknown character set: ASCII still reads, anything else is kept raw and marked.
    const unknown = read('ISO_IR 999', Buffer.from('Doe^Jane'), Buffer.from([0x4d, 0xfc]));
    expect(unknown.name).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doe^Jane' }] });
    expect(unknown.description).toEqual({ vr: 'LO', Value: ['M\u00fc'], Undecodable: true });
    // An escape sequence that no character set defines.
    const badEscape = read('\\ISO 2022 IR 87', bytes('A', esc('$Z'), 'B'));
    expect(badEscape.name).toMatchObject({ Undecodable: true });
  });

  it('reads text with no Specific Character Set as Latin-1, as most readers do', () => {
    const dataset = element(0x0008, 0x1030, 'LO', Buffer.from([0x4d, 0xfc, 0x6c, 0x6c, 0x65, 0x72]));
    expect(readElements(dataset, TransferSyntax.ExplicitVRLittleEndian)['00081030']).toEqual({
      vr: 'LO',
      Value: ['Müller'],
    });
  });
});

// Patient names in every character set DICOM defines (PS3.3 C.12.1.1.2), as the bytes a modality sends
// and the text they mean, with the examples of PS3.5 Annexes H (Japanese), I (Korean) and J (Chinese)
// byte for byte. charsets.int.test.ts sends them through the suite.

const ESC = 0x1b;
const esc = (sequence: string): number[] => [ESC, ...Buffer.from(sequence, 'latin1')];
/** ISO 2022 designations (PS3.3 Tables C.12-3 and C.12-4). */
const G0_ASCII = esc('(B');
const G0_JIS_ROMAN = esc('(J');
const G0_JIS_X0208 = esc('$B');
const G0_JIS_X0212 = esc('$(D');
const G1_KS_X1001 = esc('$)C');
const G1_GB2312 = esc('$)A');

/** Bytes from text (taken as ASCII) and byte values. */
function bytes(...parts: (string | number[])[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}

export interface CharsetCase {
  /** Short name: the flow's and the Patient ID's suffix. */
  readonly name: string;
  /** Specific Character Set (0008,0005) as dcmodify takes it (values separated by backslashes). */
  readonly charset: string;
  /** Patient's Name (0010,0010) as sent. */
  readonly patientName: Buffer;
  /** What it reads as, in its DICOM form (`Alphabetic=Ideographic=Phonetic`, trailing `=` dropped). */
  readonly decoded: string;
  /** A flow trigger on the decoded name that only the decoded text matches. */
  readonly trigger: string;
}

// PS3.5 Annex H, example 1: Yamada^Tarou=山田^太郎=やまだ^たろう
const ANNEX_H1 = bytes(
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

// PS3.5 Annex H, example 2: ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう
const ANNEX_H2 = bytes(
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

// PS3.5 Annex I: Hong^Gildong=洪^吉洞=홍^길동
const ANNEX_I = bytes(
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

// PS3.5 Annex J: Wang^XiaoDong=王^小东= in GB18030 (and GBK: the same bytes), and in UTF-8.
const ANNEX_J_GB18030 = bytes('Wang^XiaoDong=', [0xcd, 0xf5], '^', [0xd0, 0xa1, 0xb6, 0xab], '=');
// PS3.5 Annex J, ISO 2022 IR 58: Zhang^XiaoDong=张^小东=
const ANNEX_J_IR58 = bytes(
  'Zhang^XiaoDong=',
  G1_GB2312,
  [0xd5, 0xc5],
  '^',
  G1_GB2312,
  [0xd0, 0xa1, 0xb6, 0xab],
  '=',
);

export const CHARSET_CASES: readonly CharsetCase[] = [
  {
    name: 'ir100',
    charset: 'ISO_IR 100',
    patientName: Buffer.from('Müller^Jürgen', 'latin1'),
    decoded: 'Müller^Jürgen',
    trigger: 'Müller\\^Jürgen',
  },
  {
    name: 'ir101',
    charset: 'ISO_IR 101',
    patientName: bytes('Wa', [0xb3, 0xea], 'sa^Lech'),
    decoded: 'Wałęsa^Lech',
    trigger: '^Wałęsa',
  },
  {
    name: 'ir109',
    charset: 'ISO_IR 109',
    patientName: bytes('Bu', [0xf5], 'eja^', [0xa1], 'anna'),
    decoded: 'Buġeja^Ħanna',
    trigger: 'Buġeja\\^Ħanna',
  },
  {
    name: 'ir110',
    charset: 'ISO_IR 110',
    patientName: bytes([0xd3, 0xba], 'ni', [0xf1, 0xb9], '^Anna'),
    decoded: 'Ķēniņš^Anna',
    trigger: '^Ķēniņš',
  },
  {
    name: 'ir144',
    charset: 'ISO_IR 144',
    patientName: bytes([0xbb, 0xee, 0xda, 0xe1, 0xde, 0xd2], '^', [0xb8, 0xd2, 0xd0, 0xdd]),
    decoded: 'Люксов^Иван',
    trigger: 'Люксов\\^Иван',
  },
  {
    name: 'ir127',
    charset: 'ISO_IR 127',
    patientName: bytes([0xe2, 0xc8, 0xc7, 0xe6, 0xe6], '^', [0xe4, 0xe6, 0xc7, 0xd1]),
    decoded: 'قبانن^لنار',
    trigger: 'قبانن',
  },
  {
    name: 'ir126',
    charset: 'ISO_IR 126',
    patientName: bytes([0xc4, 0xe9, 0xef, 0xed, 0xf5, 0xf3, 0xe9, 0xef, 0xf2]),
    decoded: 'Διονυσιος',
    trigger: '^Διονυσιος$',
  },
  {
    name: 'ir138',
    charset: 'ISO_IR 138',
    patientName: bytes('Sharon^', [0xf9, 0xf8, 0xe5, 0xef]),
    decoded: 'Sharon^שרון',
    trigger: 'שרון',
  },
  {
    name: 'ir148',
    charset: 'ISO_IR 148',
    patientName: bytes([0xde], 'ahin^', [0xc7, 0xfd], 'k'),
    decoded: 'Şahin^Çık',
    trigger: 'Şahin\\^Çık',
  },
  {
    name: 'ir166',
    charset: 'ISO_IR 166',
    patientName: bytes([0xb9, 0xd2, 0xc2], '^Somchai'),
    decoded: 'นาย^Somchai',
    trigger: '^นาย',
  },
  {
    name: 'ir13',
    charset: 'ISO_IR 13',
    patientName: bytes([0xd4, 0xcf, 0xc0, 0xde], '^', [0xc0, 0xdb, 0xb3]),
    decoded: 'ﾔﾏﾀﾞ^ﾀﾛｳ',
    trigger: 'ﾔﾏﾀﾞ',
  },
  {
    name: 'annex-h1',
    charset: '\\ISO 2022 IR 87',
    patientName: ANNEX_H1,
    decoded: 'Yamada^Tarou=山田^太郎=やまだ^たろう',
    trigger: '山田',
  },
  {
    name: 'annex-h2',
    charset: 'ISO 2022 IR 13\\ISO 2022 IR 87',
    patientName: ANNEX_H2,
    decoded: 'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう',
    trigger: '=山田\\^太郎=',
  },
  {
    name: 'ir6-ir87',
    charset: 'ISO 2022 IR 6\\ISO 2022 IR 87',
    patientName: ANNEX_H1,
    decoded: 'Yamada^Tarou=山田^太郎=やまだ^たろう',
    trigger: 'やまだ\\^たろう$',
  },
  {
    name: 'ir87-ir159',
    charset: '\\ISO 2022 IR 87\\ISO 2022 IR 159',
    // JIS X 0212 row 16 cell 1 is 丂 (U+4E02), a kanji JIS X 0208 lacks.
    patientName: bytes(
      'Kou^Tarou=',
      G0_JIS_X0212,
      [0x30, 0x21],
      G0_ASCII,
      '^',
      G0_JIS_X0208,
      [0x42, 0x40, 0x4f, 0x3a],
      G0_ASCII,
    ),
    decoded: 'Kou^Tarou=丂^太郎',
    trigger: '丂\\^太郎',
  },
  {
    name: 'annex-i',
    charset: '\\ISO 2022 IR 149',
    patientName: ANNEX_I,
    decoded: 'Hong^Gildong=洪^吉洞=홍^길동',
    trigger: '홍\\^길동',
  },
  {
    name: 'annex-j-ir58',
    charset: '\\ISO 2022 IR 58',
    patientName: ANNEX_J_IR58,
    decoded: 'Zhang^XiaoDong=张^小东',
    trigger: '张\\^小东',
  },
  {
    name: 'annex-j-gb18030',
    charset: 'GB18030',
    patientName: ANNEX_J_GB18030,
    decoded: 'Wang^XiaoDong=王^小东',
    trigger: '=王\\^小东',
  },
  {
    name: 'gbk',
    charset: 'GBK',
    patientName: ANNEX_J_GB18030,
    decoded: 'Wang^XiaoDong=王^小东',
    trigger: '王',
  },
  {
    name: 'utf8',
    charset: 'ISO_IR 192',
    patientName: Buffer.from('Wang^XiaoDong=王^小东=', 'utf8'),
    decoded: 'Wang^XiaoDong=王^小东',
    trigger: '^Wang\\^XiaoDong=王',
  },
];

/** A name that is not valid UTF-8 although the instance says ISO_IR 192: kept raw (Latin-1), marked. */
export const UNDECODABLE_CASE: CharsetCase = {
  name: 'undecodable',
  charset: 'ISO_IR 192',
  patientName: bytes('Bad^Name', [0xc3, 0x28]),
  decoded: 'Bad^Name\u00c3(',
  trigger: '^Bad\\^Name',
};

import { describe, expect, it } from 'vitest';
import {
  ctHead,
  expectedOf,
  file,
  IMAGE_TYPE,
  INSTANCE_NUMBER,
  MODALITY,
  outcomeOf,
  PATIENT_NAME,
  PIXEL_SPACING,
  PRIVATE_LO,
  SLICE_THICKNESS,
  STUDY_DESCRIPTION,
  study,
  type Case,
  type MatchInstance,
} from './testing/match-fixtures.js';

const patient = (name: unknown): MatchInstance =>
  file('p', [MODALITY, 'CS', 'CT'], [PATIENT_NAME, 'PN', name]);

const cases: Case[] = [
  // Missing, empty and unmatchable elements.
  {
    name: 'a tag the file lacks never matches',
    triggers: [{ BodyPartExamined: '' }],
    files: study,
    triggered: false,
    selected: [],
    failedMaps: [0],
  },
  {
    name: 'a tag the file lacks never matches a pattern that matches any value',
    triggers: [{ BodyPartExamined: '^[^H]|^$' }],
    files: study,
    triggered: false,
    selected: [],
    failedMaps: [0],
  },
  {
    name: 'an empty element is the empty string',
    triggers: [{ BodyPartExamined: '^$' }],
    files: [file('e', ['00180015', 'CS'])],
    triggered: true,
    selected: ['e'],
  },
  {
    name: 'padding is not part of the value',
    triggers: [{ Modality: '^CT$' }],
    files: [file('pad', [MODALITY, 'CS', 'CT '])],
    triggered: true,
    selected: ['pad'],
  },
  {
    name: 'a sequence never matches',
    triggers: [{ ReferencedImageSequence: '' }],
    files: [file('sq', ['00081140', 'SQ', {}])],
    triggered: false,
    selected: [],
    failedMaps: [0],
  },
  // Private tags and the (gggg,eeee) form.
  {
    name: 'a private tag by (gggg,eeee)',
    triggers: [{ '(0019,10A0)': '^SITE-A$' }],
    files: [file('priv', [PRIVATE_LO, 'LO', 'SITE-A']), ctHead],
    triggered: true,
    selected: ['priv'],
  },
  {
    name: 'lower-case hex in a tag key',
    triggers: [{ '(0019,10a0)': 'SITE' }],
    files: [file('priv', [PRIVATE_LO, 'LO', 'SITE-A'])],
    triggered: true,
    selected: ['priv'],
  },
  {
    name: 'a private tag the files lack never matches',
    triggers: [{ '(0019,10A1)': '' }],
    files: [file('priv', [PRIVATE_LO, 'LO', 'SITE-A'])],
    triggered: false,
    selected: [],
    failedMaps: [0],
  },
  {
    name: 'a private tag with a binary (UN) value never matches',
    triggers: [{ '(0019,10A0)': '' }],
    files: [file('un', [PRIVATE_LO, 'UN'])],
    triggered: false,
    selected: [],
    failedMaps: [0],
  },
  {
    name: '(0010,0010) is the same as PatientName',
    triggers: [{ '(0010,0010)': '^Doe\\^Jane$' }, { PatientName: 'Jane' }],
    files: [patient({ Alphabetic: 'Doe^Jane' })],
    triggered: true,
    selected: ['p'],
  },
  {
    name: '(0008,0060) next to a keyword in one map',
    triggers: [{ '(0008,0060)': 'CT', SeriesDescription: 'Scout' }],
    files: study,
    triggered: true,
    selected: ['ct-scout'],
  },
  // Multi-valued and numeric values.
  {
    name: 'multi-valued: the backslash-joined string',
    triggers: [{ ImageType: '^ORIGINAL\\\\PRIMARY\\\\AXIAL$' }],
    files: [file('mv', [IMAGE_TYPE, 'CS', 'ORIGINAL', 'PRIMARY', 'AXIAL'])],
    triggered: true,
    selected: ['mv'],
  },
  {
    name: 'multi-valued: a search finds any one value',
    triggers: [{ ImageType: 'AXIAL' }],
    files: [file('mv', [IMAGE_TYPE, 'CS', 'ORIGINAL', 'PRIMARY', 'AXIAL'])],
    triggered: true,
    selected: ['mv'],
  },
  {
    name: 'multi-valued: an empty value stays a place',
    triggers: [{ ImageType: '^A\\\\\\\\B$' }],
    files: [file('mv', [IMAGE_TYPE, 'CS', 'A', null, 'B'])],
    triggered: true,
    selected: ['mv'],
  },
  {
    name: 'a decimal number as text',
    triggers: [{ SliceThickness: '^1\\.5$' }],
    files: [file('n', [SLICE_THICKNESS, 'DS', 1.5])],
    triggered: true,
    selected: ['n'],
  },
  {
    name: 'an integer as text',
    triggers: [{ InstanceNumber: '^12$' }],
    files: [file('n', [INSTANCE_NUMBER, 'IS', 12])],
    triggered: true,
    selected: ['n'],
  },
  {
    name: 'multi-valued numbers',
    triggers: [{ PixelSpacing: '^0\\.7\\\\0\\.7$' }],
    files: [file('n', [PIXEL_SPACING, 'DS', 0.7, 0.7])],
    triggered: true,
    selected: ['n'],
  },
  // Person names and non-ASCII text.
  {
    name: 'a person name by its alphabetic form',
    triggers: [{ PatientName: '^Müller\\^Jürgen$' }],
    files: [patient({ Alphabetic: 'Müller^Jürgen' })],
    triggered: true,
    selected: ['p'],
  },
  {
    name: 'non-ASCII letters ignore case with (?i)',
    triggers: [{ PatientName: '(?i)^MÜLLER' }],
    files: [patient({ Alphabetic: 'Müller^Jürgen' })],
    triggered: true,
    selected: ['p'],
  },
  {
    name: 'a non-ASCII letter is one character',
    triggers: [{ PatientName: '^M.ller' }],
    files: [patient({ Alphabetic: 'Müller^Jürgen' })],
    triggered: true,
    selected: ['p'],
  },
  {
    name: 'a Japanese name by its ideographic form',
    triggers: [{ PatientName: '山田' }],
    files: [patient({ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' })],
    triggered: true,
    selected: ['p'],
  },
  {
    name: 'a Japanese name by its alphabetic form',
    triggers: [{ PatientName: '^Yamada\\^Tarou=' }],
    files: [patient({ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' })],
    triggered: true,
    selected: ['p'],
  },
  {
    name: 'a name with only the ideographic form',
    triggers: [{ PatientName: '^=山田' }],
    files: [patient({ Ideographic: '山田^太郎' })],
    triggered: true,
    selected: ['p'],
  },
  {
    name: 'Japanese text in a description',
    triggers: [{ StudyDescription: '胸部' }],
    files: [file('jp', [STUDY_DESCRIPTION, 'LO', '胸部CT 造影'])],
    triggered: true,
    selected: ['jp'],
  },
  {
    name: 'a character outside the BMP is one character',
    triggers: [{ StudyDescription: '^.$' }],
    files: [file('astral', [STUDY_DESCRIPTION, 'LO', '𠮷'])],
    triggered: true,
    selected: ['astral'],
  },
  {
    name: 'an exclusion on a non-ASCII value',
    triggers: [{ Modality: 'CT', StudyDescription: '~造影' }],
    files: [file('jp', [MODALITY, 'CS', 'CT'], [STUDY_DESCRIPTION, 'LO', '胸部CT 造影']), ctHead],
    triggered: true,
    selected: ['ct-head'],
    excluded: ['jp'],
  },
];

describe('matchFlow: element values', () => {
  it.each(cases)('$name', (c) => {
    expect(outcomeOf(c)).toEqual(expectedOf(c));
  });
});

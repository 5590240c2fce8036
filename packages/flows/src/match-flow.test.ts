import { describe, expect, it } from 'vitest';
import type { TriggerMap } from '@dicomflow/messages';
import { InvalidTriggerError, matchFlow } from './index.js';
import { expectedOf, flow, outcomeOf, study, type Case, ctHead, rtstruct } from './testing/match-fixtures.js';

const cases: Case[] = [
  // Triggering and selection.
  { name: 'no triggers never triggers', triggers: [], files: study, triggered: false, selected: [] },
  { name: 'no triggers, no files', triggers: [], files: [], triggered: false, selected: [] },
  {
    name: 'no files: every map fails',
    triggers: [{ Modality: 'CT' }],
    files: [],
    triggered: false,
    selected: [],
    failedMaps: [0],
  },
  {
    name: 'one map selects the files it matches',
    triggers: [{ Modality: '^CT$' }],
    files: study,
    triggered: true,
    selected: ['ct-head', 'ct-scout'],
  },
  {
    name: 'no file matches',
    triggers: [{ Modality: 'PT' }],
    files: study,
    triggered: false,
    selected: [],
    failedMaps: [0],
  },
  {
    name: 'one map of two matches none',
    triggers: [{ Modality: 'CT' }, { Modality: 'PT' }],
    files: study,
    triggered: false,
    selected: [],
    failedMaps: [1],
  },
  {
    name: 'every map fails',
    triggers: [{ Modality: 'PT' }, { Modality: 'NM' }],
    files: study,
    triggered: false,
    selected: [],
    failedMaps: [0, 1],
  },
  {
    name: 'two maps: the union of their files, in input order',
    triggers: [{ Modality: 'RTSTRUCT' }, { Modality: '^CT$' }],
    files: study,
    triggered: true,
    selected: ['ct-head', 'ct-scout', 'rtstruct'],
  },
  {
    name: 'two maps may match the same file',
    triggers: [{ Modality: '^CT$' }, { SeriesDescription: 'Head' }],
    files: study,
    triggered: true,
    selected: ['ct-head', 'ct-scout', 'mr-t1'],
  },
  // Same-file AND inside a map.
  {
    name: 'all tags of a map must match one file',
    triggers: [{ Modality: 'CT', SeriesDescription: 'Head' }],
    files: study,
    triggered: true,
    selected: ['ct-head'],
  },
  {
    name: 'tags matched by different files do not make a match',
    triggers: [{ Modality: 'CT', SeriesDescription: 'T1' }],
    files: study,
    triggered: false,
    selected: [],
    failedMaps: [0],
  },
  // Regex search.
  {
    name: 'a pattern is searched, not matched whole',
    triggers: [{ Modality: 'T' }],
    files: study,
    triggered: true,
    selected: ['ct-head', 'ct-scout', 'rtstruct'],
  },
  {
    name: 'a search finds CT inside RTSTRUCT',
    triggers: [{ Modality: 'CT' }],
    files: study,
    triggered: true,
    selected: ['ct-head', 'ct-scout', 'rtstruct'],
  },
  {
    name: 'anchors still anchor',
    triggers: [{ Modality: '^CT$' }],
    files: study,
    triggered: true,
    selected: ['ct-head', 'ct-scout'],
  },
  {
    name: 'matching is case-sensitive',
    triggers: [{ SeriesDescription: 'head' }],
    files: study,
    triggered: false,
    selected: [],
    failedMaps: [0],
  },
  {
    name: 'a leading (?i) ignores case',
    triggers: [{ SeriesDescription: '(?i)head' }],
    files: study,
    triggered: true,
    selected: ['ct-head', 'mr-t1'],
  },
  {
    name: 'alternation inside one pattern',
    triggers: [{ Modality: '^(CT|MR)$' }],
    files: study,
    triggered: true,
    selected: ['ct-head', 'ct-scout', 'mr-t1', 'mr-loc'],
  },
  // Lists of patterns.
  {
    name: 'a list: every pattern must match',
    triggers: [{ SeriesDescription: ['Head|Neck', 'Contrast'] }],
    files: study,
    triggered: true,
    selected: ['ct-head'],
  },
  {
    name: 'a list: one pattern failing fails the tag',
    triggers: [{ SeriesDescription: ['Head', 'Neck'] }],
    files: study,
    triggered: false,
    selected: [],
    failedMaps: [0],
  },
  // Exclusions.
  {
    name: 'an exclusion removes the files it matches',
    triggers: [{ Modality: '^CT$', SeriesDescription: '~Scout' }],
    files: study,
    triggered: true,
    selected: ['ct-head'],
    excluded: ['ct-scout'],
  },
  {
    name: 'an exclusion in a list next to inclusions',
    triggers: [{ SeriesDescription: ['(?i)head|loc', '~Localizer'] }],
    files: study,
    triggered: true,
    selected: ['ct-head', 'mr-t1'],
    excluded: ['mr-loc'],
  },
  {
    name: 'an exclusion removing every file stops the flow',
    triggers: [{ Modality: 'MR', SeriesDescription: '~.' }],
    files: study,
    triggered: false,
    selected: [],
    failedMaps: [0],
    excluded: ['ct-head', 'ct-scout', 'mr-t1', 'mr-loc'],
  },
  {
    name: 'an excluded file does not satisfy a map',
    triggers: [{ Modality: 'CT' }, { Modality: 'MR', SeriesDescription: '~Localizer|T1' }],
    files: study,
    triggered: false,
    selected: [],
    failedMaps: [1],
    excluded: ['mr-t1', 'mr-loc'],
  },
  {
    name: "an exclusion applies to every map's files",
    triggers: [{ Modality: 'MR' }, { SeriesDescription: '~Localizer' }],
    files: study,
    triggered: true,
    selected: ['ct-head', 'ct-scout', 'mr-t1', 'rtstruct'],
    excluded: ['mr-loc'],
  },
  {
    name: 'a file lacking the tag of an exclusion is not excluded',
    triggers: [{ Modality: 'RTSTRUCT', SeriesDescription: '~.' }],
    files: study,
    triggered: true,
    selected: ['rtstruct'],
    excluded: ['ct-head', 'ct-scout', 'mr-t1', 'mr-loc'],
  },
  {
    name: 'an empty map matches every file not excluded',
    triggers: [{}],
    files: [ctHead, rtstruct],
    triggered: true,
    selected: ['ct-head', 'rtstruct'],
  },
];

describe('matchFlow: the rules', () => {
  it.each(cases)('$name', (c) => {
    expect(outcomeOf(c)).toEqual(expectedOf(c));
  });

  it('counts the files each map matched', () => {
    const result = matchFlow(flow([{ Modality: '^CT$' }, { Modality: 'MR' }, { Modality: 'PT' }]), study);
    expect(result.mapMatchCounts).toEqual([2, 2, 0]);
  });

  it('refuses a flow whose triggers were never validated', () => {
    const unchecked = { ...flow([]), triggers: [{ NoSuchKeyword: 'x' }] };
    expect(() => matchFlow(unchecked, study)).toThrow(/NoSuchKeyword: is not a DICOM keyword/);
  });

  it('refuses a malformed trigger entry rather than skip it (which would widen the match)', () => {
    const unchecked = {
      ...flow([]),
      triggers: [{ Modality: 'CT', SeriesNumber: 2 }] as unknown as TriggerMap[],
    };
    expect(() => matchFlow(unchecked, study)).toThrow(InvalidTriggerError);
  });
});

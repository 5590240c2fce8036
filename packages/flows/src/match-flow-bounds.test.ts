import { describe, expect, it } from 'vitest';
import { elementText } from './element-text.js';
import { matchFlow } from './match-flow.js';
import { compilePattern } from './trigger-patterns.js';
import { file, flow, MODALITY, PATIENT_NAME, SERIES_DESCRIPTION } from './testing/match-fixtures.js';

/*
 * Matching on values of several MB, and patterns that take V8's backtracking engine exponential time: both
 * run in time linear in the value. No timing is asserted: a test that never ends fails on the test timeout
 * (the quadratic padding strip took 3.9 s for 65 KB, so hours for these).
 */

const MB = 1024 * 1024;

describe('matching values of several MB, in linear time', () => {
  it('strips the padding of 8 MB of words separated by spaces, and of 8 MB of padding', () => {
    const words = 'a '.repeat(4 * MB);
    expect(elementText({ vr: 'LO', Value: [words] })).toHaveLength(8 * MB - 1);
    expect(elementText({ vr: 'UT', Value: [`x${' \0'.repeat(4 * MB)}`] })).toBe('x');
    expect(elementText({ vr: 'PN', Value: [{ Alphabetic: `Doe${' '.repeat(4 * MB)}` }] })).toBe('Doe');
  });

  it('matches trigger patterns against an 8 MB value', () => {
    const long = file(
      'long',
      [MODALITY, 'CS', 'CT'],
      [SERIES_DESCRIPTION, 'LO', `${'a '.repeat(4 * MB)}HEAD`],
      [PATIENT_NAME, 'PN', { Alphabetic: `${'Doe '.repeat(MB)}^Jane` }],
    );
    const result = matchFlow(
      flow([{ Modality: 'CT', SeriesDescription: ['HEAD$', '(?i)^a a'], PatientName: '\\^Jane$' }]),
      [long],
    );
    expect(result).toMatchObject({ triggered: true, selected: ['long'] });
  });

  it('runs a pattern with nested quantifiers in linear time', () => {
    // `^(a+)+$` on "aaa...ab" backtracks exponentially in V8; RE2 answers in one pass.
    const catastrophic = compilePattern('^(a+)+$');
    expect(catastrophic.test(`${'a'.repeat(MB)}b`)).toBe(false);
    expect(catastrophic.test('a'.repeat(MB))).toBe(true);
    const evil = file('evil', [SERIES_DESCRIPTION, 'LO', `${'a'.repeat(2 * MB)}!`]);
    const result = matchFlow(flow([{ SeriesDescription: ['(a|a)*$', '^(a*)*b'] }]), [evil]);
    expect(result.triggered).toBe(false);
  });
});

describe('trigger patterns on RE2', () => {
  it('keeps the syntax flows use: inline flags, alternation, classes, Unicode', () => {
    expect(compilePattern('(?i)^ct$').test('CT')).toBe(true);
    expect(compilePattern('(?s)a.b').test('a\nb')).toBe(true);
    expect(compilePattern('(?m)^b$').test('a\nb')).toBe(true);
    expect(compilePattern('CT|MR').test('MR')).toBe(true);
    expect(compilePattern('^\\d{3}Y$').test('042Y')).toBe(true);
    expect(compilePattern('^\\p{Han}+$').test('山田')).toBe(true);
    expect(compilePattern('(?P<body>CHEST)').test('CHEST CT')).toBe(true);
  });

  it('refuses look-around and back-references with the reason', () => {
    expect(() => compilePattern('^(?!HEAD)')).toThrow(/look-around and back-references need backtracking/);
    expect(() => compilePattern('(a)\\1')).toThrow(/invalid escape sequence/);
  });
});

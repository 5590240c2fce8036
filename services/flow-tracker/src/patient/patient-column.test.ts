import { describe, expect, it } from 'vitest';
import { initials, patientColumn, pseudonym } from './patient-column.js';

const instance = (name: string | undefined): { elements: Record<string, unknown> } => ({
  elements: name === undefined ? {} : { '00100010': { vr: 'PN', Value: [{ Alphabetic: name }] } },
});
const index = (...names: (string | undefined)[]): { instances: never } => ({
  instances: names.map(instance) as never,
});

describe('patient column', () => {
  it('is empty with PATIENT_COLUMN none', () => {
    expect(patientColumn(index('Doe^Jane'), 'none', 'k')).toBe('');
  });

  it('makes initials in reading order', () => {
    expect(initials('Doe^Jane')).toBe('JD');
    expect(initials('van der Berg^Anna-Lena^Q')).toBe('ALQVDB');
    expect(initials('Müller^Jürgen=ミュラー')).toBe('JM');
    expect(patientColumn(index('Doe^Jane', 'Doe^Jane', undefined), 'initials', '')).toBe('JD');
  });

  it('makes a keyed pseudonym that ignores case and spacing but depends on the key', () => {
    const a = pseudonym('Doe^Jane', 'key-one-0123456789');
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(pseudonym('DOE^ jane ^', 'key-one-0123456789')).toBe(a);
    expect(pseudonym('Doe^Jane', 'key-two-0123456789')).not.toBe(a);
    expect(patientColumn(index('Doe^Jane'), 'pseudonym', 'key-one-0123456789')).toBe(a);
    expect(patientColumn(index('Doe^Jane'), 'pseudonym', 'key-one-0123456789')).not.toContain('Doe');
  });
});

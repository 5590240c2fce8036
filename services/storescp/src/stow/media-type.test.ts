import { describe, expect, it } from 'vitest';
import { isValidBoundary, parseMediaType } from './media-type.js';

describe('parseMediaType', () => {
  it('reads type, subtype and parameters, lower-casing names but not values', () => {
    const media = parseMediaType('Multipart/Related; Type="application/dicom"; BOUNDARY=AbC-123');
    expect(media?.type).toBe('multipart/related');
    expect(Object.fromEntries(media?.parameters ?? [])).toEqual({
      type: 'application/dicom',
      boundary: 'AbC-123',
    });
  });

  it('unquotes quoted values, with their escapes, spaces and semicolons', () => {
    const media = parseMediaType('multipart/related;boundary="a b;c\\"d\\\\e" ; type=application/dicom');
    expect(media?.parameters.get('boundary')).toBe('a b;c"d\\e');
    expect(media?.parameters.get('type')).toBe('application/dicom');
  });

  it('allows white space around separators, empty parameters, and keeps the first of a repeated name', () => {
    const media = parseMediaType('  application/dicom ;; charset=x ;charset=y ; ');
    expect(media?.type).toBe('application/dicom');
    expect(media?.parameters.get('charset')).toBe('x');
  });

  it.each([
    [''],
    ['multipart'],
    ['multipart/'],
    ['/related'],
    ['multipart/related boundary=x'],
    ['multipart/related; boundary'],
    ['multipart/related; boundary="unterminated'],
    ['multipart/related; boundary=a b'],
    ['multipart/related; =x'],
  ])('refuses %j', (header) => {
    expect(parseMediaType(header)).toBeUndefined();
  });
});

describe('isValidBoundary', () => {
  it("takes RFC 2046 boundaries, spaces inside only, and longer ones up to 200 (Orthanc's have 73)", () => {
    expect(isValidBoundary('x')).toBe(true);
    expect(isValidBoundary("a'()+_,-./:=? z")).toBe(true);
    expect(isValidBoundary('b'.repeat(70))).toBe(true);
    expect(isValidBoundary(`${'3a690f42-7bd9-4126-b697-d39d9d60f482'.repeat(2)}-`)).toBe(true);
    expect(isValidBoundary('b'.repeat(200))).toBe(true);
    expect(isValidBoundary('b'.repeat(201))).toBe(false);
    expect(isValidBoundary('')).toBe(false);
    expect(isValidBoundary('ends with space ')).toBe(false);
    expect(isValidBoundary('semi;colon')).toBe(false);
    expect(isValidBoundary('quote"d')).toBe(false);
  });
});

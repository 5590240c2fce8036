import { describe, expect, it } from 'vitest';
import { buildPart10Prefix, type Part10PrefixInput } from '@dicomflow/dicom';
import { part10Prefix } from './part10-prefix.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';

describe('part10Prefix', () => {
  const inputs: Record<string, Part10PrefixInput> = {
    'odd and even UIDs, odd AE title': {
      sopClassUid: CT,
      sopInstanceUid: '1.2.3.45',
      transferSyntaxUid: EXPLICIT_LE,
      sourceAeTitle: 'STORESCU1',
    },
    'even instance UID, even AE title': {
      sopClassUid: CT,
      sopInstanceUid: '1.2.3.456',
      transferSyntaxUid: IMPLICIT_LE,
      sourceAeTitle: 'STORESCU',
    },
    'AE title with an inner space': {
      sopClassUid: CT,
      sopInstanceUid: '2.25.123456789012345678901234567890123',
      transferSyntaxUid: EXPLICIT_LE,
      sourceAeTitle: 'MY SCU',
    },
    'no AE title': { sopClassUid: CT, sopInstanceUid: '1.2.3', transferSyntaxUid: EXPLICIT_LE },
    'empty AE title': {
      sopClassUid: CT,
      sopInstanceUid: '1.2.3',
      transferSyntaxUid: EXPLICIT_LE,
      sourceAeTitle: '',
    },
    '64-character UID': {
      sopClassUid: CT,
      sopInstanceUid: `1.2.${'9'.repeat(60)}`,
      transferSyntaxUid: '1.2.840.10008.1.2.1.99',
      sourceAeTitle: 'A',
    },
    'non-ASCII AE title (falls back)': {
      sopClassUid: CT,
      sopInstanceUid: '1.2.3',
      transferSyntaxUid: EXPLICIT_LE,
      sourceAeTitle: 'SCÜ',
    },
    'AE title with a trailing space (falls back)': {
      sopClassUid: CT,
      sopInstanceUid: '1.2.3',
      transferSyntaxUid: EXPLICIT_LE,
      sourceAeTitle: 'SCU ',
    },
  };

  for (const [name, input] of Object.entries(inputs)) {
    it(`writes the bytes buildPart10Prefix writes: ${name}`, () => {
      expect(part10Prefix(input)).toEqual(buildPart10Prefix(input));
    });
  }
});

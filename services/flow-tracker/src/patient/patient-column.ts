import { createHmac } from 'node:crypto';

/** What the run table shows about the patient (PATIENT_COLUMN). */
export type PatientColumnMode = 'none' | 'pseudonym' | 'initials';

/** Hex characters of the HMAC kept as the pseudonym: 64 bits, plenty to tell a site's patients apart. */
const PSEUDONYM_HEX_CHARS = 16;

/** DICOM JSON key of PatientName (0010,0010). */
const PATIENT_NAME_TAG = '00100010';

/**
 * Turns the patient names found in a receipt's index into the patient column: nothing, initials, or a
 * keyed hash. The name itself is never stored or logged; distinct results are joined with ", ".
 */
export function patientColumn(
  index: { readonly instances: readonly { readonly elements: Record<string, unknown> }[] },
  mode: PatientColumnMode,
  pseudonymKey: string,
): string {
  if (mode === 'none') return '';
  const names = new Set<string>();
  for (const instance of index.instances) {
    const name = patientNameOf(instance.elements);
    if (name !== undefined && name.trim() !== '') names.add(name);
  }
  return patientColumnOfNames(names, mode, pseudonymKey);
}

/** {@link patientColumn} of the distinct patient names already collected. */
export function patientColumnOfNames(
  names: ReadonlySet<string>,
  mode: PatientColumnMode,
  pseudonymKey: string,
): string {
  if (mode === 'none') return '';
  const values = new Set<string>();
  for (const name of names) values.add(mode === 'initials' ? initials(name) : pseudonym(name, pseudonymKey));
  return [...values]
    .filter((v) => v !== '')
    .sort()
    .join(', ');
}

/** The alphabetic PatientName of one instance in its DICOM form (`Family^Given^Middle^Prefix^Suffix`). */
export function patientNameOf(elements: Record<string, unknown>): string | undefined {
  const element = elements[PATIENT_NAME_TAG];
  if (typeof element !== 'object' || element === null || !('Value' in element)) return undefined;
  const values: unknown = element.Value;
  if (!Array.isArray(values)) return undefined;
  const first: unknown = values[0];
  if (typeof first === 'string') return first;
  if (typeof first === 'object' && first !== null && 'Alphabetic' in first) {
    const alphabetic: unknown = first.Alphabetic;
    if (typeof alphabetic === 'string') return alphabetic;
  }
  return undefined;
}

/** Initials in reading order, given and middle names first: `Doe^Jane^Q` -> `JQD`. */
export function initials(name: string): string {
  const [family = '', given = '', middle = ''] = name.split('=')[0]?.split('^') ?? [];
  return [given, middle, family]
    .flatMap((part) => part.split(/[\s-]+/))
    .map((word) => firstGrapheme(word.trim()))
    .join('')
    .toLocaleUpperCase('en');
}

/**
 * A keyed hash (HMAC-SHA256) of the name, normalised (case, spacing, empty trailing components) so that
 * the same patient sent by two systems gets the same pseudonym; without the key it cannot be reversed by
 * hashing guessed names.
 */
export function pseudonym(name: string, key: string): string {
  const normalised = name
    .normalize('NFC')
    .toLocaleUpperCase('en')
    .split('^')
    .map((part) => part.trim().replace(/\s+/g, ' '))
    .join('^')
    .replace(/\^+$/, '');
  return createHmac('sha256', key).update(normalised).digest('hex').slice(0, PSEUDONYM_HEX_CHARS);
}

const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });

function firstGrapheme(word: string): string {
  for (const { segment } of graphemes.segment(word)) return segment;
  return '';
}

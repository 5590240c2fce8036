/** VRs whose values are binary; the receipt index keeps only their VR, so there is nothing to match. */
const BINARY_VRS: ReadonlySet<string> = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);

/**
 * The string a trigger pattern is searched in, for one element in the DICOM JSON model (PS3.18 F.2):
 * values joined by `\` (as DICOM encodes multi-valued elements), numbers as JavaScript prints them, person
 * names as their DICOM form (`Alphabetic=Ideographic=Phonetic`, trailing empty groups dropped, so usually
 * just the alphabetic name), empty values as ''. Undefined when the element is absent or has no string
 * form (sequences, binary values): such a tag never matches.
 */
export function elementText(element: unknown): string | undefined {
  if (typeof element !== 'object' || element === null) return undefined;
  const { vr, Value: values } = element as { vr?: unknown; Value?: unknown };
  if (vr === 'SQ' || (typeof vr === 'string' && BINARY_VRS.has(vr))) return undefined;
  if ('InlineBinary' in element || 'BulkDataURI' in element) return undefined;
  if (values === undefined) return '';
  if (!Array.isArray(values)) return undefined;
  return values.map(valueText).join('\\');
}

function valueText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return stripPadding(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  if (typeof value === 'object') return personNameText(value as Record<string, unknown>);
  return '';
}

function personNameText(name: Record<string, unknown>): string {
  const groups = [name.Alphabetic, name.Ideographic, name.Phonetic].map((group) =>
    typeof group === 'string' ? stripPadding(group) : '',
  );
  while (groups.length > 1 && groups.at(-1) === '') groups.pop();
  return groups.join('=');
}

// DICOM pads values to an even length with a space (or NUL for UI); the padding is not part of the value.
// An index loop from the end: a regular expression anchored at the end retries from every space of a
// long value, which is quadratic in its length.
function stripPadding(text: string): string {
  let end = text.length;
  while (end > 0) {
    const code = text.charCodeAt(end - 1);
    if (code !== 0x20 && code !== 0) break;
    end -= 1;
  }
  return end === text.length ? text : text.slice(0, end);
}

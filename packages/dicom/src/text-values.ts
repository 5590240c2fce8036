/*
 * The values of a text element, by the rules of dcmjs 0.51's value representations (trimming, padding,
 * splitting, number parsing), which the receipt index has always followed. Each rule is one pass over the
 * value: no regular expression here is anchored at the end or can backtrack, so a value of any length
 * costs time in proportion to it.
 */

const BACKSLASH = '\\';

/**
 * dcmjs drops a trailing pad from the last of several values only for these: a maximum length and a
 * non-zero pad byte (so never for UI, padded with NUL). The length itself plays no part in the rule.
 */
const PAD_DROP_VRS: ReadonlySet<string> = new Set([
  'AE',
  'AS',
  'CS',
  'DA',
  'DS',
  'DT',
  'IS',
  'LO',
  'SH',
  'ST',
  'TM',
]);

/** The values dcmjs reads from the (decoded) text of a `vr` element. */
export function textValues(vr: string, raw: string): unknown[] {
  switch (vr) {
    case 'CS':
      return dropPad(vr, raw.split(BACKSLASH)).map((s) => s.trim());
    case 'DS':
    case 'IS':
      return dropPad(vr, raw.split(BACKSLASH)).map(formatNumber);
    case 'UI': {
      const text = raw.endsWith('\0') ? raw.slice(0, -1) : raw;
      return text.split(BACKSLASH).map(uidCharacters);
    }
    case 'PN':
      return personNames(raw.endsWith(' ') ? raw.slice(0, -1) : raw);
    case 'LT':
      return [trimEnd(raw)];
    case 'AE':
    case 'LO':
    case 'SH':
      return dropPad(vr, raw.trim().split(BACKSLASH));
    case 'ST':
    case 'TM':
    case 'UC':
    case 'UT':
      return dropPad(vr, trimEnd(raw).split(BACKSLASH));
    default: // AS, DA, DT, UR: taken as they are
      return dropPad(vr, raw.split(BACKSLASH));
  }
}

/** dcmjs's `dropPadByte`: the last of several values loses one trailing pad when its length is odd. */
function dropPad(vr: string, values: string[]): string[] {
  if (values.length < 2 || !PAD_DROP_VRS.has(vr)) return values;
  const last = values[values.length - 1] ?? '';
  if (last.length % 2 !== 0 && last.endsWith(' ')) values[values.length - 1] = last.slice(0, -1);
  return values;
}

/** A DS or IS value as a number: only digits, `.`, sign and exponent characters count; '' is null. */
export function formatNumber(text: string): number | null {
  let cleaned = '';
  let from = -1;
  // Copies runs of kept characters at once (the same result as removing every other character).
  for (let i = 0; i <= text.length; i++) {
    const keep = i < text.length && isNumberCharacter(text.charCodeAt(i));
    if (keep && from < 0) from = i;
    if (!keep && from >= 0) {
      cleaned += text.slice(from, i);
      from = -1;
    }
  }
  return cleaned === '' ? null : Number(cleaned);
}

function isNumberCharacter(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x2e || // .
    code === 0x2d || // -
    code === 0x2b || // +
    code === 0x65 || // e
    code === 0x45 // E
  );
}

/** A UID keeps only its digits and dots. */
function uidCharacters(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length && plain; i++) {
    const code = text.charCodeAt(i);
    plain = (code >= 0x30 && code <= 0x39) || code === 0x2e;
  }
  if (plain) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code >= 0x30 && code <= 0x39) || code === 0x2e) out += text.charAt(i);
  }
  return out;
}

/** `text` without trailing white space as JavaScript's `\s` defines it (dcmjs's `/\s*$/`), in one pass. */
export function trimEnd(text: string): string {
  let end = text.length;
  while (end > 0 && isWhiteSpace(text.charCodeAt(end - 1))) end -= 1;
  return end === text.length ? text : text.slice(0, end);
}

/** JavaScript's `\s`: ECMAScript WhiteSpace and LineTerminator code points. */
export function isWhiteSpace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  return (
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

/** dcmjs's person-name objects: empty values dropped, components by `=`, empty components left out. */
function personNames(text: string): Array<Record<string, string>> {
  return text
    .split(BACKSLASH)
    .filter(Boolean)
    .map((value) => {
      const [alphabetic, ideographic, phonetic] = value.split('=');
      return {
        ...(alphabetic ? { Alphabetic: alphabetic } : {}),
        ...(ideographic ? { Ideographic: ideographic } : {}),
        ...(phonetic ? { Phonetic: phonetic } : {}),
      };
    });
}

/** A Content-Type value: its type/subtype and parameters. */
export interface MediaType {
  /** `type/subtype`, lower case. */
  readonly type: string;
  /** Parameters by lower-case name, values unquoted (a name given twice keeps its first value). */
  readonly parameters: ReadonlyMap<string, string>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
const WHITESPACE = /[ \t]*/y;
/** An unquoted value: a token, leniently (`type=application/dicom` has a `/`, which RFC 9110 would quote). */
const BARE_VALUE = /[^\s;"]+/y;

/**
 * Parses a Content-Type header value (RFC 9110 8.3.1: `type/subtype *( OWS ";" OWS [ name=value ] )`,
 * values a token or a quoted string with backslash escapes). Undefined when it does not follow that syntax.
 */
export function parseMediaType(header: string): MediaType | undefined {
  let at = 0;
  const match = (pattern: RegExp): string | undefined => {
    pattern.lastIndex = at;
    const found = pattern.exec(header);
    if (!found) return undefined;
    at = pattern.lastIndex;
    return found[0];
  };
  match(WHITESPACE);
  const type = match(TOKEN);
  if (type === undefined || header[at] !== '/') return undefined;
  at += 1;
  const subtype = match(TOKEN);
  if (subtype === undefined) return undefined;
  const parameters = new Map<string, string>();
  for (;;) {
    match(WHITESPACE);
    if (at === header.length) break;
    if (header[at] !== ';') return undefined;
    at += 1;
    match(WHITESPACE);
    if (at === header.length || header[at] === ';') continue;
    const name = match(TOKEN)?.toLowerCase();
    if (name === undefined || header[at] !== '=') return undefined;
    at += 1;
    const value = header[at] === '"' ? quotedString() : match(BARE_VALUE);
    if (value === undefined) return undefined;
    if (!parameters.has(name)) parameters.set(name, value);
  }
  return { type: `${type}/${subtype}`.toLowerCase(), parameters };

  function quotedString(): string | undefined {
    let value = '';
    for (at += 1; at < header.length; at += 1) {
      const char = header[at];
      if (char === '"') {
        at += 1;
        return value;
      }
      if (char === '\\') at += 1;
      value += header.charAt(at);
    }
    return undefined; // no closing quote
  }
}

/**
 * RFC 2046 5.1.1: characters from this set, not ending with a space, at most 70 of them. Longer ones are
 * taken too, up to 200: Orthanc's DICOMweb plugin sends 73 (two UUIDs).
 */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,199}[0-9A-Za-z'()+_,\-./:=?]$/;

/** True when `boundary` is a valid multipart boundary (RFC 2046 5.1.1, longer allowed). */
export function isValidBoundary(boundary: string): boolean {
  return BOUNDARY.test(boundary);
}

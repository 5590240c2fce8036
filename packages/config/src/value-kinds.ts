import { isIP } from 'node:net';

/**
 * How one configuration value is read and checked. The same kind serves every source: environment
 * variables and `_FILE` secrets arrive as text, YAML values arrive typed (but a quoted YAML number is
 * text too), so `coerce` turns text into the typed value where it can and `accepts` has the last word.
 */
export interface ValueKind<T> {
  /** What a valid value looks like, phrased to follow "must be ...". */
  readonly expects: string;
  /** Converts input to the typed value when it can; returns it unchanged when it cannot. */
  readonly coerce: (input: unknown) => unknown;
  /** True when `value` is a valid, already coerced value of this kind. */
  readonly accepts: (value: unknown) => value is T;
}

/** A check on one list item (a string) with a description for error messages. */
export interface ItemRule {
  readonly expects: string;
  readonly accepts: (item: string) => boolean;
}

const identity = (input: unknown): unknown => input;

/** Any string, optionally bounded in length and restricted to a pattern. */
export function text(rule?: ItemRule): ValueKind<string> {
  return {
    expects: rule ? `a string: ${rule.expects}` : 'a string (quote it in YAML if it looks like a number)',
    coerce: identity,
    accepts: (value): value is string => typeof value === 'string' && (rule?.accepts(value) ?? true),
  };
}

/** A safe integer within `[min, max]`; text must be plain decimal digits (no `12abc`, no `1e3`). */
export function integer(min: number, max: number = Number.MAX_SAFE_INTEGER): ValueKind<number> {
  return {
    expects:
      max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer between ${min} and ${max}`,
    coerce: (input) => (typeof input === 'string' && /^\s*[+-]?\d+\s*$/.test(input) ? Number(input) : input),
    accepts: (value): value is number =>
      typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max,
  };
}

/** A TCP port; 0 asks the OS for a free one, which tests rely on. */
export const port: ValueKind<number> = integer(0, 65535);

/** A finite number greater than zero (fractions allowed, so tests can use short timeouts). */
export const positiveNumber: ValueKind<number> = {
  expects: 'a number > 0',
  coerce: (input) => {
    if (typeof input !== 'string' || input.trim() === '') return input;
    const parsed = Number(input);
    return Number.isFinite(parsed) ? parsed : input;
  },
  accepts: (value): value is number => typeof value === 'number' && Number.isFinite(value) && value > 0,
};

const TRUE_WORDS = new Set(['true', '1']);
const FALSE_WORDS = new Set(['false', '0']);

/** A boolean; text may be true/false/1/0 (any case). Unlike convict's own Boolean, "no" is not true. */
export const flag: ValueKind<boolean> = {
  expects: 'a boolean (true, false, 1 or 0)',
  coerce: (input) => {
    if (typeof input !== 'string') return input;
    const word = input.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    return input;
  },
  accepts: (value): value is boolean => typeof value === 'boolean',
};

/** One of a fixed set of strings; matching ignores case so `LOG_LEVEL=INFO` works. */
export function oneOf<const V extends string>(values: readonly V[]): ValueKind<V> {
  return {
    expects: `one of ${values.join(', ')}`,
    coerce: (input) =>
      typeof input === 'string' ? (values.find((v) => v === input.trim().toLowerCase()) ?? input) : input,
    accepts: (value): value is V =>
      typeof value === 'string' && (values as readonly string[]).includes(value),
  };
}

/**
 * A list of strings: a YAML list, or a space- and/or comma-separated string (the only form an
 * environment variable can take). Numbers in a YAML list become strings so `GPUS: [0, 1]` works.
 */
export function list(rule: ItemRule): ValueKind<readonly string[]> {
  return {
    expects: `a list (YAML list or space/comma-separated string) of ${rule.expects}`,
    coerce: (input) => {
      if (typeof input === 'string') return input.split(/[\s,]+/).filter((item) => item !== '');
      if (Array.isArray(input))
        return input.map((item: unknown) => (typeof item === 'number' ? String(item) : item));
      return input;
    },
    accepts: (value): value is readonly string[] =>
      Array.isArray(value) && value.every((item: unknown) => typeof item === 'string' && rule.accepts(item)),
  };
}

/** DICOM AE title: 1-16 printable ASCII characters except backslash, not all spaces (PS3.5 VR AE). */
export const aeTitleRule: ItemRule = {
  expects: 'AE titles (1-16 printable ASCII characters, no backslash)',
  accepts: (item) => /^[\x20-\x5b\x5d-\x7e]{1,16}$/.test(item) && item.trim() !== '',
};

/** A DICOM keyword such as `StudyInstanceUID`. */
export const dicomKeywordRule: ItemRule = {
  expects: 'DICOM keywords (e.g. StudyInstanceUID)',
  accepts: (item) => /^[A-Za-z][A-Za-z0-9]*$/.test(item),
};

/** An IPv4/IPv6 address or a CIDR block such as `10.0.0.0/8`. */
export const ipOrCidrRule: ItemRule = {
  expects: 'IP addresses or CIDR blocks (e.g. 10.0.0.0/8)',
  accepts: (item) => {
    const parts = item.split('/');
    const [address = '', prefix] = parts;
    const family = isIP(address);
    if (family === 0 || parts.length > 2) return false;
    if (parts.length === 1) return true;
    if (prefix === undefined || !/^\d{1,3}$/.test(prefix)) return false;
    return Number(prefix) <= (family === 4 ? 32 : 128);
  },
};

/** A GPU id as docker accepts it: an index or a UUID-like name. */
export const gpuIdRule: ItemRule = {
  expects: 'GPU ids (an index like 0 or a UUID like GPU-3f2a...)',
  accepts: (item) => /^[A-Za-z0-9][\w.:-]*$/.test(item),
};

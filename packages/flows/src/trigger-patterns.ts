import { isPatientTag, resolveTag } from '@dicomflow/dicom';
import {
  TRIGGER_KEY_PATTERN,
  type FlowDefinition,
  type FlowIssue,
  type TriggerPatterns,
} from '@dicomflow/messages';
import dcmjs from 'dcmjs';
import { RE2JS } from 're2js';

/**
 * A compiled trigger pattern. Patterns run on RE2 (re2js, a pure-JavaScript port): its automaton matches
 * in time linear in the value's length whatever the pattern, so no flow and no value can stall matching.
 * V8's backtracking engine takes exponential time on patterns such as `(a+)+$`.
 */
export interface TriggerPattern {
  /** True when the pattern is found anywhere in `text` (a search, not anchored). */
  test(text: string): boolean;
  /** The pattern as written (without a leading `~`). */
  readonly source: string;
}

/** One tag of a trigger map, ready to match. */
export interface CompiledTag {
  /** The key as the flow wrote it (keyword or `(gggg,eeee)`). */
  readonly key: string;
  /** Upper-case `GGGGEEEE`, the key of the element in the DICOM JSON model. */
  readonly tag: string;
  /** Patterns the value must all match (none: the tag only excludes). */
  readonly include: readonly TriggerPattern[];
  /** Patterns (written with a leading `~`) that exclude a file when its value matches one. */
  readonly exclude: readonly TriggerPattern[];
}

/** One trigger map, ready to match. */
export interface CompiledTriggerMap {
  readonly tags: readonly CompiledTag[];
}

/** Raised by {@link compileTriggers} when a flow that skipped validation holds a bad key or pattern. */
export class InvalidTriggerError extends Error {
  override readonly name = 'InvalidTriggerError';
  constructor(readonly issues: readonly FlowIssue[]) {
    const first = issues[0];
    super(`invalid trigger: ${first ? `${first.path.join('.')}: ${first.reason}` : 'unknown'}`);
  }
}

const EXCLUSION_PREFIX = '~';

const compiledFlows = new WeakMap<FlowDefinition, readonly CompiledTriggerMap[]>();

/**
 * The flow's trigger maps with tags resolved and patterns compiled; cached per flow object. Throws
 * {@link InvalidTriggerError} for an unknown keyword or a pattern that does not compile (flows from
 * `parseFlow` never do: it reports those as problems).
 */
export function compileTriggers(flow: FlowDefinition): readonly CompiledTriggerMap[] {
  let compiled = compiledFlows.get(flow);
  if (compiled === undefined) {
    const result = checkTriggers(flow.triggers);
    // A skipped malformed entry would silently widen what the flow matches: refuse it instead.
    const issues = [...result.malformed, ...result.issues];
    if (issues.length > 0) throw new InvalidTriggerError(issues);
    compiled = result.maps;
    compiledFlows.set(flow, compiled);
  }
  return compiled;
}

/** What {@link checkTriggers} found. */
export interface TriggerCheck {
  readonly maps: CompiledTriggerMap[];
  /** Unknown keywords and patterns that do not compile. */
  readonly issues: FlowIssue[];
  /** Entries of the wrong shape, left out of `maps` (the schema check names them in its own words). */
  readonly malformed: FlowIssue[];
}

/**
 * Compiles every trigger map and collects every key or pattern that cannot be used, with its path. Takes the
 * triggers as parsed, not yet schema-checked, so that one pass can report these next to the schema's issues.
 */
export function checkTriggers(triggers: unknown): TriggerCheck {
  const issues: FlowIssue[] = [];
  const malformed: FlowIssue[] = [];
  const list: unknown[] = Array.isArray(triggers) ? triggers : [];
  if (!Array.isArray(triggers)) malformed.push({ path: ['triggers'], reason: 'must be a list' });
  const maps = list.map((map, index) => {
    const tags: CompiledTag[] = [];
    if (typeof map !== 'object' || map === null || Array.isArray(map)) {
      malformed.push({ path: ['triggers', index], reason: 'must be a mapping' });
      return { tags };
    }
    for (const [key, patterns] of Object.entries(map)) {
      const at = ['triggers', index, key];
      if (!isPatterns(patterns) || !TRIGGER_KEY.test(key)) {
        malformed.push({
          path: at,
          reason: 'must be a keyword or (gggg,eeee) with a pattern or list of them',
        });
        continue;
      }
      const tag = tagOf(key);
      if (tag === undefined) {
        issues.push({ path: at, reason: unknownKeywordReason(key) });
        continue;
      }
      tags.push(compileTag(key, tag, patterns, at, issues));
    }
    return { tags };
  });
  return { maps, issues, malformed };
}

const TRIGGER_KEY = new RegExp(TRIGGER_KEY_PATTERN);

function isPatterns(value: unknown): value is TriggerPatterns {
  return (
    typeof value === 'string' || (Array.isArray(value) && value.every((item) => typeof item === 'string'))
  );
}

function compileTag(
  key: string,
  tag: string,
  patterns: TriggerPatterns,
  at: readonly (string | number)[],
  issues: FlowIssue[],
): CompiledTag {
  const include: TriggerPattern[] = [];
  const exclude: TriggerPattern[] = [];
  const list = typeof patterns === 'string' ? [patterns] : patterns;
  list.forEach((pattern, i) => {
    const excludes = pattern.startsWith(EXCLUSION_PREFIX);
    const path = typeof patterns === 'string' ? at : [...at, i];
    try {
      const regex = compilePattern(excludes ? pattern.slice(EXCLUSION_PREFIX.length) : pattern);
      (excludes ? exclude : include).push(regex);
    } catch (err) {
      issues.push({ path, reason: (err as Error).message });
    }
  });
  return { key, tag, include, exclude };
}

const RE2_PREFIX = 'error parsing regexp: ';

/**
 * A trigger pattern in RE2 syntax (close to Python's `re`, the original flow format: inline flags such as
 * `(?i)`, `(?m)`, `(?s)` anywhere, `(?P<name>...)` groups; no look-around or back-references, which need
 * backtracking). Throws an Error whose message is the reason when RE2 cannot compile it.
 */
export function compilePattern(pattern: string): TriggerPattern {
  try {
    const compiled = RE2JS.compile(pattern);
    return { source: pattern, test: (text) => compiled.test(text) };
  } catch (err) {
    // re2js says "error parsing regexp: missing closing ): `(`"; the part after the prefix is the reason.
    const message = (err as Error).message;
    const detail = message.startsWith(RE2_PREFIX) ? message.slice(RE2_PREFIX.length) : message;
    const hint = /unsupported Perl syntax: `\(\?[=!<]|invalid escape sequence: `\\[1-9]/.test(detail)
      ? '; look-around and back-references need backtracking, which RE2 leaves out so that matching stays linear'
      : '';
    throw new Error(`is not a valid regular expression (${detail}${hint})`, { cause: err });
  }
}

/** `GGGGEEEE` of a keyword or `(gggg,eeee)`; undefined for an unknown keyword. */
export function tagOf(key: string): string | undefined {
  const tag = resolveTag(key);
  // Repeating-group keywords (60xx) resolve to no single tag.
  return tag !== undefined && /^[0-9A-F]{8}$/.test(tag) ? tag : undefined;
}

/**
 * Checks that every `tar_subdir` entry that looks like a keyword is one of the DICOM dictionary (as parsed;
 * entries of the wrong shape are left to the schema check).
 */
export function checkTarSubdir(tarSubdir: unknown): FlowIssue[] {
  if (!Array.isArray(tarSubdir)) return [];
  return (tarSubdir as unknown[]).flatMap((keyword, index) => {
    if (typeof keyword !== 'string' || !/^[A-Za-z][A-Za-z0-9]*$/.test(keyword)) return [];
    const tag = tagOf(keyword);
    if (tag === undefined) return [{ path: ['tar_subdir', index], reason: unknownKeywordReason(keyword) }];
    if (isPatientTag(tag)) return [{ path: ['tar_subdir', index], reason: PATIENT_FOLDER_REASON }];
    return [];
  });
}

/** Why a patient attribute cannot name folders (tar_subdir here, TAR_SUBDIR in the receiver). */
export const PATIENT_FOLDER_REASON =
  'is a patient attribute: folder names travel in messages and logs, which must not hold patient data (use StudyInstanceUID, SeriesInstanceUID or another non-patient tag)';

let keywordsByLowerCase: Map<string, string> | undefined;

function unknownKeywordReason(key: string): string {
  keywordsByLowerCase ??= new Map(
    Object.keys(dcmjs.data.DicomMetaDictionary.nameMap).map((name) => [name.toLowerCase(), name]),
  );
  const suggestion = keywordsByLowerCase.get(key.toLowerCase());
  const hint = suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`;
  return `is not a DICOM keyword${hint}`;
}

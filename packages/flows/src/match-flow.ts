import type { FlowDefinition } from '@dicomflow/messages';
import { elementText } from './element-text.js';
import { compileTriggers, type CompiledTag, type CompiledTriggerMap } from './trigger-patterns.js';

/** One received file as matching sees it: its tar member and its elements (receipt index entry). */
export interface MatchInstance {
  readonly member: string;
  /** Top-level elements in the DICOM JSON model, keyed by upper-case `GGGGEEEE`. */
  readonly elements: Readonly<Record<string, unknown>>;
}

/** What {@link matchFlow} decided for one flow and one group of files. */
export interface MatchResult {
  /** True when every trigger map matched at least one file (never for a flow without triggers). */
  readonly triggered: boolean;
  /** Indexes of the trigger maps that matched no file. */
  readonly failedMaps: readonly number[];
  /** Members the run takes, in input order: files that matched a map and no exclusion; [] unless triggered. */
  readonly selected: readonly string[];
  /** Members removed by a `~` exclusion pattern, in input order. */
  readonly excluded: readonly string[];
  /** Per trigger map, how many files (not excluded) it matched. */
  readonly mapMatchCounts: readonly number[];
}

/**
 * Decides whether a group of files triggers `flow` and which files the run takes (DESIGN.md "Flow
 * definitions"):
 * - a file is excluded when any `~pattern` of any map matches its value of that tag; excluded files take no
 *   part in matching and are never selected;
 * - a trigger map matches a file when every tag of the map matches that same file; a tag matches when the
 *   file has the element and every (non-`~`) pattern of the tag is found in its value (regex search; see
 *   {@link elementText} for the value's string form); a tag with only `~` patterns adds no condition;
 * - the flow triggers when every map matches at least one file; a flow without maps never triggers;
 * - the run takes every file that matched at least one map.
 */
export function matchFlow(flow: FlowDefinition, instances: readonly MatchInstance[]): MatchResult {
  const matcher = new FlowMatcher(flow);
  for (const instance of instances) matcher.add(instance);
  return matcher.result();
}

/**
 * {@link matchFlow} one file at a time, for groups too large to hold: each file is decided as it comes
 * (exclusion and map matches depend on the file alone), and only member names and counts are kept.
 */
export class FlowMatcher {
  private readonly maps: readonly CompiledTriggerMap[];
  private readonly counts: number[];
  private readonly matched: string[] = [];
  private readonly excluded: string[] = [];

  /** Throws InvalidTriggerError for a flow with a bad key or pattern (see compileTriggers). */
  constructor(flow: FlowDefinition) {
    this.maps = compileTriggers(flow);
    this.counts = this.maps.map(() => 0);
  }

  /** Takes one file into account. */
  add(instance: MatchInstance): void {
    if (this.maps.some((map) => isExcludedBy(map, instance))) {
      this.excluded.push(instance.member);
      return;
    }
    let matchedAny = false;
    for (let index = 0; index < this.maps.length; index++) {
      const map = this.maps[index];
      if (map === undefined || !mapMatches(map, instance)) continue;
      this.counts[index] = (this.counts[index] ?? 0) + 1;
      matchedAny = true;
    }
    if (matchedAny) this.matched.push(instance.member);
  }

  /** The decision for the files added so far. */
  result(): MatchResult {
    const failedMaps = this.counts.flatMap((count, index) => (count === 0 ? [index] : []));
    const triggered = this.maps.length > 0 && failedMaps.length === 0;
    return {
      triggered,
      failedMaps,
      selected: triggered ? [...this.matched] : [],
      excluded: [...this.excluded],
      mapMatchCounts: [...this.counts],
    };
  }
}

function isExcludedBy(map: CompiledTriggerMap, instance: MatchInstance): boolean {
  return map.tags.some((tag) => {
    if (tag.exclude.length === 0) return false;
    const text = elementText(instance.elements[tag.tag]);
    return text !== undefined && tag.exclude.some((regex) => regex.test(text));
  });
}

function mapMatches(map: CompiledTriggerMap, instance: MatchInstance): boolean {
  return map.tags.every((tag) => tagMatches(tag, instance));
}

function tagMatches(tag: CompiledTag, instance: MatchInstance): boolean {
  if (tag.include.length === 0) return true;
  const text = elementText(instance.elements[tag.tag]);
  return text !== undefined && tag.include.every((regex) => regex.test(text));
}

import type { ConfigOf } from '@dicomflow/config';
import { resolveTag, stringValue, type InstanceInfo } from '@dicomflow/dicom';

/**
 * An expected count above this is not believed: no study holds a billion instances, and a bogus value
 * must not keep a number in memory that can never be reached anyway (the quiet period still applies).
 */
const MAX_EXPECTED_INSTANCES = 1_000_000;

/** Why a group stopped taking instances. */
export type SealReason = 'association' | 'count' | 'timeout' | 'recovered';

/**
 * Resolves the configured count keywords (for example `NumberOfSeriesRelatedInstances`) to tags.
 * Throws naming the config key when one is not a DICOM keyword or tag.
 */
export function resolveCountTags(configKey: string, keywords: readonly string[]): string[] {
  return keywords.map((keyword) => {
    const tag = resolveTag(keyword);
    if (tag === undefined) throw new Error(`${configKey}: ${keyword} is not a DICOM keyword or tag`);
    return tag;
  });
}

/** The count tags of the configured grouping (none for `association`). */
export function countTagsOf(
  config: Pick<ConfigOf<'storescp'>, 'GROUPING' | 'GROUP_COUNT_TAGS_SERIES' | 'GROUP_COUNT_TAGS_STUDY'>,
): string[] {
  switch (config.GROUPING) {
    case 'association':
      return [];
    case 'series':
      return resolveCountTags('GROUP_COUNT_TAGS_SERIES', config.GROUP_COUNT_TAGS_SERIES);
    case 'study':
      return resolveCountTags('GROUP_COUNT_TAGS_STUDY', config.GROUP_COUNT_TAGS_STUDY);
  }
}

/**
 * How many distinct instances the group of `info` will hold, by the first of `tags` that carries a
 * positive integer; undefined when none does (the group then completes after the quiet period only).
 */
export function expectedInstanceCount(info: InstanceInfo, tags: readonly string[]): number | undefined {
  for (const tag of tags) {
    const text = stringValue(info.elements, tag);
    if (text === undefined || !/^\+?\d{1,9}$/.test(text)) continue;
    const count = Number(text);
    if (count > 0 && count <= MAX_EXPECTED_INSTANCES) return count;
  }
  return undefined;
}

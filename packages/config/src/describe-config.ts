import { isDeepStrictEqual } from 'node:util';
import type { KeySpec } from './key-spec.js';
import { SERVICE_KEYS, SERVICE_NAMES } from './services.js';
import type { ServiceName } from './services.js';

/** Documentation of one configuration key. */
export interface ConfigKeyDescription {
  key: string;
  /** The services that read the key, or `all`. */
  services: ServiceName[] | 'all';
  /** The built-in default; when services differ (HTTP_PORT), an object of defaults by service. */
  default: unknown;
  doc: string;
  sensitive: boolean;
}

/**
 * Every key any service knows, in schema order (common keys first), for generated documentation and
 * for checks that a config file covers them all.
 */
export function describeConfig(): ConfigKeyDescription[] {
  const byKey = new Map<string, { services: ServiceName[]; specs: KeySpec<unknown>[] }>();
  for (const service of SERVICE_NAMES) {
    for (const [key, spec] of Object.entries(SERVICE_KEYS[service]) as [string, KeySpec<unknown>][]) {
      const entry = byKey.get(key) ?? { services: [], specs: [] };
      entry.services.push(service);
      entry.specs.push(spec);
      byKey.set(key, entry);
    }
  }
  return [...byKey].map(([key, { services, specs }]) => {
    const [first] = specs as [KeySpec<unknown>, ...KeySpec<unknown>[]];
    const sameDefault = specs.every((spec) => isDeepStrictEqual(spec.default, first.default));
    return {
      key,
      services: services.length === SERVICE_NAMES.length ? 'all' : services,
      default: sameDefault
        ? first.default
        : Object.fromEntries(services.map((service, i) => [service, specs[i]?.default])),
      doc: first.doc,
      sensitive: first.sensitive,
    };
  });
}

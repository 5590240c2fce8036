import type { ValueKind } from './value-kinds.js';

/** One configuration key: how its value is read, its built-in default and its documentation. */
export interface KeySpec<T> {
  readonly kind: ValueKind<T>;
  readonly default: T;
  readonly doc: string;
  /** Secrets: never echoed in error messages, marked in the generated documentation. */
  readonly sensitive: boolean;
}

/** A set of keys by name. */
export type KeyGroup = Readonly<Record<string, KeySpec<unknown>>>;

/** The typed, read-only values of a key group. */
export type ValuesOf<G extends KeyGroup> = {
  readonly [K in keyof G]: G[K] extends KeySpec<infer T> ? T : never;
};

/** Declares a key; the type of its value follows from `kind`. */
export function key<T>(
  kind: ValueKind<T>,
  defaultValue: NoInfer<T>,
  doc: string,
  options: { sensitive?: boolean } = {},
): KeySpec<T> {
  return { kind, default: defaultValue, doc, sensitive: options.sensitive ?? false };
}

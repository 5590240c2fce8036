import { createHash } from 'node:crypto';
import type { FlowDefinition } from '@dicomflow/messages';

/**
 * sha256 (hex) of the flow's canonical JSON (object keys sorted at every level), so the same definition
 * hashes the same whatever the key order or layout of its file. Hash a flow with its defaults filled in
 * (as `parseFlow` returns it), so leaving a default out and writing it give one hash.
 */
export function hashFlow(flow: FlowDefinition): string {
  return createHash('sha256').update(canonicalJson(flow)).digest('hex');
}

/** JSON with object keys sorted at every level; arrays keep their order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return item;
    const entries = Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(entries);
  });
}

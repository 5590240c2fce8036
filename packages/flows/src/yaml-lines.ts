import type { FlowPath } from '@dicomflow/messages';
import { isMap, isScalar, isSeq, type LineCounter, type Node, type ParsedNode } from 'yaml';

/**
 * The 1-based line of the field at `path` in a parsed YAML document: the line of its key for a mapping
 * field, of the item for a list entry. When the path leads to something the file lacks (a missing required
 * field), the line of the deepest part that exists.
 */
export function lineOfPath(root: ParsedNode | null, path: FlowPath, lines: LineCounter): number {
  let node: unknown = root;
  let line = lineOf(root, lines) ?? 1;
  for (const segment of path) {
    let next: unknown;
    let at: number | undefined;
    if (isMap(node)) {
      const pair = node.items.find((item) => keyText(item.key) === String(segment));
      next = pair?.value;
      at = lineOf(pair?.key, lines);
    } else if (isSeq(node) && typeof segment === 'number') {
      next = node.items[segment];
      at = lineOf(next, lines);
    }
    if (at === undefined) break;
    line = at;
    node = next;
  }
  return line;
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function lineOf(node: unknown, lines: LineCounter): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? lines.linePos(range[0]).line : undefined;
}

import { describe, expect, it } from 'vitest';
import { canonicalJson, hashFlow, parseFlow } from './index.js';

function flowOf(text: string) {
  const result = parseFlow(text, 'f.yaml');
  if (!result.ok) throw new Error('invalid test flow');
  return result.flow;
}

describe('hashFlow', () => {
  it('is the same whatever the key order, layout or left-out defaults', () => {
    const a = flowOf('name: a\npriority: 0\ntriggers: [{Modality: CT, SeriesDescription: x}]\n');
    const b = flowOf('triggers:\n  - SeriesDescription: x\n    Modality: CT\nname: a # comment\n');
    expect(hashFlow(a)).toBe(hashFlow(b));
    expect(hashFlow(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes with any value, and with the order of list items', () => {
    const base = hashFlow(flowOf('triggers: [{Modality: CT}, {Modality: MR}]\n'));
    expect(hashFlow(flowOf('triggers: [{Modality: MR}, {Modality: CT}]\n'))).not.toBe(base);
    expect(hashFlow(flowOf('triggers: [{Modality: CT}, {Modality: MR}]\npriority: 1\n'))).not.toBe(base);
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps arrays in order', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }, 3] })).toBe('{"a":[{"c":2,"d":1},3],"b":1}');
  });
});

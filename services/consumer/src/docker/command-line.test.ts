import { describe, expect, it } from 'vitest';
import { splitCommandLine } from './command-line.js';

describe('splitCommandLine (shlex.split, as docker-py)', () => {
  it.each([
    ['python run.py --fast', ['python', 'run.py', '--fast']],
    ["sh -c 'cp -r /input/. /output/'", ['sh', '-c', 'cp -r /input/. /output/']],
    ['echo "a \\"b\\" $X"', ['echo', 'a "b" $X']],
    ['a\\ b  c', ['a b', 'c']],
    ["''", ['']],
    ['  ', []],
  ])('%s', (line, args) => {
    expect(splitCommandLine(line)).toEqual(args);
  });

  it('refuses an unbalanced quote', () => {
    expect(() => splitCommandLine("sh -c 'oops")).toThrow(/unbalanced ' quote/);
  });
});

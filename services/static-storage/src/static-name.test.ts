import { describe, expect, it } from 'vitest';
import { nameOfTarFile, parseStaticName, staticNameProblem } from './static-name.js';

describe('static content names', () => {
  it('accepts letters, digits, ".", "_" and "-" after a letter or digit, up to 128 characters', () => {
    for (const name of ['a', 'chest-weights_v1.2', 'X9', 'a'.repeat(128), 'model.tar']) {
      expect(staticNameProblem(name)).toBeUndefined();
    }
  });

  it('refuses paths, traversal, hidden and overlong names with the rule in the message', () => {
    for (const name of [
      '',
      '..',
      '../x',
      'a/b',
      'a\\b',
      'a..b',
      '.hidden',
      '-x',
      'a b',
      'a%2Fb',
      'é',
      'a'.repeat(129),
    ]) {
      expect(() => parseStaticName(name)).toThrow(/^invalid static content name: /);
    }
    expect(() => parseStaticName('../etc')).toThrow(/no paths/);
  });

  it('maps folder files and object keys to names', () => {
    expect(nameOfTarFile('weights.tar')).toBe('weights');
    expect(nameOfTarFile('weights.tar.tar')).toBe('weights.tar');
    expect(nameOfTarFile('weights.tgz')).toBeUndefined();
    expect(nameOfTarFile('.weights.tar')).toBeUndefined();
    expect(nameOfTarFile('.tar')).toBeUndefined();
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeConfig } from './describe-config.js';
import { renderConfigReference, withConfigReference } from './config-reference.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

describe('the configuration reference in README.md', () => {
  it('lists every key with its services and default', () => {
    const table = renderConfigReference();
    for (const d of describeConfig()) expect(table).toContain(`| \`${d.key}\` |`);
    expect(table).toMatch(/\| `HTTP_PORT` \| all \| storescp: `9101`<br>fingerprinter: `9102`/);
    expect(table).toContain('| `CPUS` | consumer | `1` |');
  });

  it('is up to date (regenerate with npm run docs:config)', () => {
    expect(readme).toBe(withConfigReference(readme));
  });

  it('refuses a file without the markers', () => {
    expect(() => withConfigReference('# no markers')).toThrow(/markers/);
  });
});

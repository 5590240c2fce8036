#!/usr/bin/env node
// Rewrites the configuration reference in README.md from the config schemas (npm run docs:config).
// Uses the built package: run `npm run build` first.
import console from 'node:console';
import { readFileSync, writeFileSync } from 'node:fs';
import { URL } from 'node:url';
import { withConfigReference } from '@dicomflow/config';

const file = new URL('../README.md', import.meta.url);
const before = readFileSync(file, 'utf8');
const after = withConfigReference(before);
if (after === before) console.log('README.md: configuration reference is up to date');
else {
  writeFileSync(file, after);
  console.log('README.md: configuration reference rewritten');
}

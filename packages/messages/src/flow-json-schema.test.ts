import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { flowJsonSchema } from './index.js';

const committed = new URL('../schemas/flow.schema.json', import.meta.url);

describe('schemas/flow.schema.json', () => {
  it('is up to date with the TypeBox source (regenerate: npm run schemas -w packages/messages)', async () => {
    const onDisk = JSON.parse(await readFile(committed, 'utf8')) as unknown;
    expect(onDisk).toEqual(flowJsonSchema());
  });

  it('is a draft-07 schema that leaves defaulted fields optional', () => {
    const schema = flowJsonSchema();
    expect(schema).toMatchObject({
      $schema: 'http://json-schema.org/draft-07/schema#',
      additionalProperties: false,
    });
    expect(schema).not.toHaveProperty('required');
    expect(Object.getOwnPropertySymbols(schema)).toEqual([]);
  });
});

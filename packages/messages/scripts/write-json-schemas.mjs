// Regenerates schemas/flow.schema.json from the TypeBox source (run `npm run schemas -w packages/messages`,
// which builds first). flow-json-schema.test.ts fails while the committed file is out of date.
import console from 'node:console';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath, URL } from 'node:url';
import * as prettier from 'prettier';
import { flowJsonSchema } from '../dist/index.js';

const target = fileURLToPath(new URL('../schemas/flow.schema.json', import.meta.url));
const options = (await prettier.resolveConfig(target)) ?? {};
const text = await prettier.format(JSON.stringify(flowJsonSchema()), { ...options, filepath: target });
await writeFile(target, text);
console.log(`wrote ${target}`);

import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatProblem, matchFlow, parseFlow } from './index.js';
import {
  file as instance,
  MODALITY,
  SERIES_DESCRIPTION,
  SLICE_THICKNESS,
  IMAGE_TYPE,
} from './testing/match-fixtures.js';

// The examples users copy from (mounts/flows, loaded by default, and mounts/flows/examples, which is not)
// must pass both the published JSON Schema, as an editor checks them, and the loader the fingerprinter uses.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const examplesDir = join(root, 'mounts', 'flows');
const schemaFile = join(root, 'packages', 'messages', 'schemas', 'flow.schema.json');
const MODELINE = /^# yaml-language-server: \$schema=(\S+)$/m;

const yamlIn = async (dir: string): Promise<string[]> =>
  (await readdir(dir)).filter((name) => /\.ya?ml$/.test(name)).sort();
const names = [
  ...(await yamlIn(examplesDir)),
  ...(await yamlIn(join(examplesDir, 'examples'))).map((name) => `examples/${name}`),
];
const schema = JSON.parse(await readFile(schemaFile, 'utf8')) as Record<string, unknown>;
// Editors ignore the annotation keywords; ajv in strict mode must be told they are known.
const validate = new Ajv({ allErrors: true, keywords: ['errorMessage', 'patternErrorMessage'] }).compile(
  schema,
);

describe('example flows in mounts/flows', () => {
  it('load one flow by default, the local CT copy, and keep the site examples (GPU, MR) aside', () => {
    expect(names).toEqual([
      'ct-copy.yaml',
      'examples/ct-gpu-segmentation.yaml',
      'examples/mr-without-localizers.yaml',
    ]);
  });

  describe.each(names)('%s', (name) => {
    const file = join(examplesDir, name);

    it('is valid against the committed JSON Schema', async () => {
      const data: unknown = parse(await readFile(file, 'utf8'));
      validate(data);
      expect(validate.errors ?? []).toEqual([]);
    });

    it('loads with parseFlow', async () => {
      const result = parseFlow(await readFile(file, 'utf8'), file);
      expect(result.ok ? [] : result.problems.map(formatProblem)).toEqual([]);
    });

    it('is shown verbatim in README.md', async () => {
      const readme = await readFile(join(root, 'README.md'), 'utf8');
      expect(readme).toContain(`\`\`\`yaml\n${await readFile(file, 'utf8')}\`\`\``);
    });

    it('names the JSON Schema for editors by a path that exists', async () => {
      const modeline = MODELINE.exec(await readFile(file, 'utf8'));
      expect(modeline?.[1] && resolve(dirname(file), modeline[1])).toBe(schemaFile);
    });
  });

  it('the schema refuses what parseFlow refuses for its shape', () => {
    validate({ models: [{ docker_kwargs: { image: 'a', privileged: true } }], priority: 9 });
    expect(validate.errors?.map((error) => error.instancePath)).toEqual(
      expect.arrayContaining(['/priority', '/models/0/docker_kwargs']),
    );
  });
});

describe('example flows do what their comments say', () => {
  async function example(name: string) {
    const result = parseFlow(await readFile(join(examplesDir, name), 'utf8'), name);
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    return result.flow;
  }
  const ct = (member: string, imageType: string[], thickness = 1.5) =>
    instance(
      member,
      [MODALITY, 'CS', 'CT'],
      [IMAGE_TYPE, 'CS', ...imageType],
      [SLICE_THICKNESS, 'DS', thickness],
      ['00180015', 'CS', 'CHEST'],
    );
  const mr = (member: string, description: string) =>
    instance(member, [MODALITY, 'CS', 'MR'], [SERIES_DESCRIPTION, 'LO', description]);

  it('ct-copy takes the CT images but not the localizer, nor the RTSTRUCT', async () => {
    const files = [
      ct('axial', ['ORIGINAL', 'PRIMARY', 'AXIAL']),
      ct('scout', ['ORIGINAL', 'PRIMARY', 'LOCALIZER']),
      instance('rt', [MODALITY, 'CS', 'RTSTRUCT']),
    ];
    expect(matchFlow(await example('ct-copy.yaml'), files).selected).toEqual(['axial']);
  });

  it('mr-without-localizers needs a T1 series and then takes every MR series but localizers', async () => {
    const flow = await example('examples/mr-without-localizers.yaml');
    const t1 = mr('t1', 'T1 MPRAGE');
    const t2 = mr('t2', 'T2 FLAIR');
    const localizer = mr('loc', 'AAHead_Scout localizer');
    expect(matchFlow(flow, [localizer, t1, t2]).selected).toEqual(['t1', 't2']);
    expect(matchFlow(flow, [localizer, t2]).triggered).toBe(false);
  });

  it('ct-gpu-segmentation takes chest CTs of 1-3 mm slices only', async () => {
    const flow = await example('examples/ct-gpu-segmentation.yaml');
    expect(matchFlow(flow, [ct('thin', ['ORIGINAL'], 1.25), ct('thick', ['ORIGINAL'], 5)]).selected).toEqual([
      'thin',
    ]);
    expect(flow.models.map((model) => model.gpu)).toEqual([true, false]);
  });
});

import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox';
import { FlowDestination } from './destination.js';
import { DockerKwargs } from './docker-kwargs.js';

/**
 * A trigger key: a DICOM keyword (`SeriesDescription`) or a tag as `(gggg,eeee)`. Whether a keyword exists
 * in the dictionary is checked by `@dicomflow/flows`, which knows the dictionary.
 */
export const TRIGGER_KEY_PATTERN = '^(\\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\\)|[A-Za-z][A-Za-z0-9]*)$';

const TRIGGER_KEY_ERROR = 'must be a DICOM keyword (e.g. Modality) or a tag as (gggg,eeee)';

/**
 * An object schema whose properties with a `default` are optional in the JSON Schema (a flow file may leave
 * them out) but required in the static type: validation fills them in, so code always sees every field.
 */
function ObjectWithDefaults<T extends TProperties>(
  properties: T,
  options: { description: string },
): TObject<T> {
  const schema = Type.Object(properties, { ...options, additionalProperties: false });
  // TypeBox types `required` as a tuple of the keys; editing it needs the plain JSON Schema view.
  const plain = schema as { required?: string[] };
  const required = (plain.required ?? []).filter((key) => properties[key]?.default === undefined);
  if (required.length > 0) plain.required = required;
  else delete plain.required;
  return schema;
}

/** Regex patterns for one tag: a string, or a list of strings that must all match. `~` marks an exclusion. */
export const TriggerPatterns = Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })], {
  errorMessage: 'must be a regex string or a list of regex strings',
  description:
    'Regex searched in the element value (a list: every pattern must match). A pattern starting with ~ ' +
    'excludes the files it matches.',
});
export type TriggerPatterns = Static<typeof TriggerPatterns>;

/** One trigger map: tag -> patterns; it matches a file when every tag matches that same file. */
export const TriggerMap = Type.Record(Type.String({ pattern: TRIGGER_KEY_PATTERN }), TriggerPatterns, {
  additionalProperties: false,
  errorMessage: `must be a mapping of tag: pattern; each tag ${TRIGGER_KEY_ERROR}`,
  description: 'Tag -> regex. Matches a file when every tag in it matches that file.',
});
export type TriggerMap = Static<typeof TriggerMap>;

/** One model step of a flow; the output of one model is the input of the next. */
export const FlowModel = ObjectWithDefaults(
  {
    docker_kwargs: DockerKwargs,
    gpu: Type.Boolean({ default: false, description: 'Run on a GPU slot (job.gpu) instead of a CPU slot.' }),
    input_dir: Type.String({
      default: '/input/',
      pattern: '^/',
      patternErrorMessage: 'must be an absolute path',
      description: 'Where the input files appear in the container.',
    }),
    output_dir: Type.String({
      default: '/output/',
      pattern: '^/',
      patternErrorMessage: 'must be an absolute path',
      description: 'Where the container writes its output.',
    }),
    pull_before_exec: Type.Boolean({ default: false, description: 'Pull the image before every run.' }),
    timeout: Type.Integer({
      default: 1800,
      minimum: 1,
      description: 'Seconds the container may run before it is stopped and the run fails.',
    }),
    static_mounts: Type.Array(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*:/[^:]*$',
        patternErrorMessage: 'must be "name:/path" (static/<name>.tar mounted read-only at /path)',
      }),
      { default: [], description: 'Static content mounted read-only, as "name:/path".' },
    ),
    network: Type.Boolean({ default: false, description: 'Give the container a network (none by default).' }),
  },
  { description: 'A containerised model step.' },
);
export type FlowModel = Static<typeof FlowModel>;

/** A DICOM keyword, as the receiver's TAR_SUBDIR takes them. */
const Keyword = Type.String({
  pattern: '^[A-Za-z][A-Za-z0-9]*$',
  patternErrorMessage: 'must be a DICOM keyword (e.g. SeriesInstanceUID)',
});

/**
 * A flow definition (one YAML file in the flow directory), DESIGN.md "Flow definitions". After validation
 * every field is present, defaults filled in.
 */
export const FlowDefinition = ObjectWithDefaults(
  {
    name: Type.String({ default: '', maxLength: 256, description: 'Name shown in logs and the dashboard.' }),
    version: Type.String({ default: '', maxLength: 64, description: 'Free-form version (quote numbers).' }),
    priority: Type.Integer({
      default: 0,
      minimum: 0,
      maximum: 5,
      description: 'Queue priority 0-5 of the first job (5 is taken first).',
    }),
    triggers: Type.Array(TriggerMap, {
      default: [],
      description:
        'The flow triggers when every map matches at least one file of the study. No maps: never triggers.',
    }),
    models: Type.Array(FlowModel, { default: [], description: 'Models run in order.' }),
    destinations: Type.Array(FlowDestination, {
      default: [],
      description: 'DICOM nodes and DICOMweb servers that receive the last model output.',
    }),
    tar_subdir: Type.Array(Keyword, {
      default: [],
      maxItems: 16,
      description: 'Folder layout of the model input by tag (overrides the receiver TAR_SUBDIR).',
    }),
    return_to_sender_on_ports: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }), {
      default: [],
      description: 'Also send the output back to the sending host on these ports (with its AE title).',
    }),
  },
  { description: 'A DicomFlow flow definition: which studies to pick, which models to run, where to send.' },
);
export type FlowDefinition = Static<typeof FlowDefinition>;

/**
 * {@link FlowDefinition} with every defaulted field required, at every level: the form a flow has after
 * validation, and the only form messages may carry (a reader never has to know the defaults).
 */
export const CompleteFlowDefinition = requireDefaulted(FlowDefinition) as typeof FlowDefinition;

/** A deep copy of `schema` (TypeBox symbols kept) in which object properties with a default are required. */
function requireDefaulted(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map((item: unknown) => requireDefaulted(item));
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: Record<string | symbol, unknown> = { ...(schema as Record<string | symbol, unknown>) };
  for (const [key, value] of Object.entries(copy)) {
    if (key !== 'default') copy[key] = requireDefaulted(value);
  }
  const properties = copy.properties as Record<string, { default?: unknown }> | undefined;
  if (copy.type === 'object' && properties !== undefined) {
    const required = new Set((copy.required as string[] | undefined) ?? []);
    for (const [key, property] of Object.entries(properties))
      if (property.default !== undefined) required.add(key);
    copy.required = [...required];
  }
  return copy;
}

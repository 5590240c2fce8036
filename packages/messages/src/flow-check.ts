import { Ajv, type ErrorObject } from 'ajv';
import { REFUSED_DOCKER_KWARGS } from './docker-kwargs.js';
import { addEditorKeywords } from './editor-keywords.js';
import { FlowDefinition } from './flow-definition.js';
import { closestName } from './closest-name.js';

/** A place in a flow definition: property names and list indexes from the top. */
export type FlowPath = readonly (string | number)[];

/** One reason a flow definition is invalid, at the field it concerns. */
export interface FlowIssue {
  readonly path: FlowPath;
  readonly reason: string;
}

/** The outcome of {@link checkFlowDefinition}. */
export type FlowCheckResult =
  | { readonly ok: true; readonly flow: FlowDefinition }
  | { readonly ok: false; readonly issues: readonly FlowIssue[] };

// useDefaults fills in every absent field; verbose gives each error its schema, for the editor messages.
const ajv = new Ajv({
  allErrors: true,
  strict: true,
  strictRequired: false,
  useDefaults: true,
  verbose: true,
});
addEditorKeywords(ajv);
const validateFlow = ajv.compile<FlowDefinition>(FlowDefinition);

/**
 * Checks parsed flow data (e.g. from YAML) against {@link FlowDefinition} and returns a copy with every
 * default filled in, or every issue found, each naming its field path and a reason a flow author can act on.
 * Does not check what needs the DICOM dictionary or a regex engine (`@dicomflow/flows` does).
 */
export function checkFlowDefinition(data: unknown): FlowCheckResult {
  const copy = structuredClone(data);
  if (validateFlow(copy)) return { ok: true, flow: copy };
  return { ok: false, issues: describeFlowErrors(validateFlow.errors ?? []) };
}

function describeFlowErrors(errors: readonly ErrorObject[]): FlowIssue[] {
  // A failed anyOf also reports why each branch failed; its own (editor) message says it better, unless
  // the data's fields pick one branch (a destination with `url` is a DICOMweb server): then that branch's
  // own errors say exactly what is wrong, and the others are noise.
  // Schema paths are the same for every list item: an anyOf's branch errors are those under its schema
  // path at or under its data path.
  const anyOfErrors = errors.filter((e) => e.keyword === 'anyOf');
  const chosen = new Map(anyOfErrors.map((e) => [e, chosenBranch(e)]));
  const dropped = anyOfErrors.map((e) => {
    const branch = chosen.get(e);
    const all = `${e.schemaPath}/`;
    return { at: e.instancePath, all, except: branch === undefined ? undefined : `${all}${branch}/` };
  });
  const isBranchError = (error: ErrorObject): boolean =>
    dropped.some(
      (d) =>
        (error.instancePath === d.at || error.instancePath.startsWith(`${d.at}/`)) &&
        error.schemaPath.startsWith(d.all) &&
        !(d.except !== undefined && error.schemaPath.startsWith(d.except)),
    );
  const seen = new Set<string>();
  const issues: FlowIssue[] = [];
  for (const error of errors) {
    if (chosen.get(error) !== undefined || isBranchError(error)) continue;
    const issue = describeError(error);
    const id = JSON.stringify(issue);
    if (seen.has(id)) continue;
    seen.add(id);
    issues.push(issue);
  }
  return issues;
}

/**
 * The one branch of a failed anyOf of object schemas that the data's fields point to (the only branch
 * knowing any of them), else undefined: no field is known to any branch, or fields of several branches are
 * mixed (the anyOf's own message then says which forms exist).
 */
function chosenBranch(error: ErrorObject): number | undefined {
  const data: unknown = error.data;
  const schema: unknown = error.schema;
  if (typeof data !== 'object' || data === null || Array.isArray(data) || !Array.isArray(schema))
    return undefined;
  const keys = Object.keys(data);
  const fieldsOf = (schema as unknown[]).map((branch) => {
    const properties = (branch as { properties?: unknown } | null)?.properties;
    return typeof properties === 'object' && properties !== null ? Object.keys(properties) : [];
  });
  const claiming = fieldsOf.flatMap((fields, n) => (keys.some((k) => fields.includes(k)) ? [n] : []));
  return claiming.length === 1 ? claiming[0] : undefined;
}

function describeError(error: ErrorObject): FlowIssue {
  const at = pathOf(error.instancePath);
  const params = error.params as Record<string, unknown>;
  const schema = (error.parentSchema ?? {}) as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: [...at, String(params.missingProperty)], reason: 'is required' };
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      return { path: [...at, key], reason: unknownKeyReason(at, key, schema) };
    }
    case 'type':
      return { path: at, reason: typeReason(at, String(params.type), error.data) };
    case 'pattern':
      return {
        path: at,
        reason: stringOr(schema.patternErrorMessage, `must match ${String(params.pattern)}`),
      };
    case 'anyOf':
      return { path: at, reason: stringOr(schema.errorMessage, 'has the wrong form') };
    case 'not':
      return {
        path: at,
        reason: stringOr((error.schema as { errorMessage?: unknown }).errorMessage, 'is not allowed'),
      };
    case 'minLength':
      return {
        path: at,
        reason: params.limit === 1 ? 'must not be empty' : (error.message ?? 'is too short'),
      };
    case 'minItems':
      return { path: at, reason: params.limit === 1 ? 'must not be an empty list' : (error.message ?? '') };
    default:
      return { path: at, reason: error.message ?? 'is invalid' };
  }
}

function unknownKeyReason(at: FlowPath, key: string, schema: Record<string, unknown>): string {
  if (at.at(-1) === 'docker_kwargs') {
    const refused = REFUSED_DOCKER_KWARGS[key];
    if (refused !== undefined) return `is not allowed: ${refused}`;
  }
  if (at.length === 2 && at[0] === 'triggers') {
    return 'is not a DICOM keyword (e.g. Modality) or a tag as (gggg,eeee)';
  }
  const known = Object.keys(schema.properties ?? {});
  const suggestion = closestName(key, known);
  const docker = at.at(-1) === 'docker_kwargs';
  const hint =
    suggestion === undefined
      ? `${docker ? 'allowed' : 'known'}: ${known.join(', ')}`
      : `did you mean ${suggestion}?`;
  return `${docker ? 'is not an allowed docker_kwargs key' : 'is not a known field'} (${hint})`;
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

function typeReason(at: FlowPath, type: string, value: unknown): string {
  if (at.length === 0) return 'a flow file must be a mapping of fields (name, triggers, models, ...)';
  const expected = `must be ${TYPE_NAMES[type] ?? type}`;
  // YAML reads `version: 1.10` as the number 1.1; only quotes keep what the author wrote.
  const quoteHint = type === 'string' && (typeof value === 'number' || typeof value === 'boolean');
  return quoteHint ? `${expected}: put the value in quotes` : expected;
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

/** JSON Pointer (`/models/0/gpu`) to path segments; numeric segments are list indexes here. */
function pathOf(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^(0|[1-9][0-9]*)$/.test(segment) ? Number(segment) : segment));
}

import type { Static, TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsModule from 'ajv-formats';
import { addEditorKeywords } from './editor-keywords.js';
import { MESSAGE_SCHEMAS, type MessageOf, type SchemaRoutingKey } from './registry.js';
import { ReceiptIndex } from './receipt-index.js';

/** The outcome of validating untrusted data against a schema. */
export type ValidationResult<T> = { ok: true; value: T } | { ok: false; error: string };

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the module object.
const addFormats = formatsModule.default;

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
addFormats(ajv, ['uuid', 'date-time']);
addEditorKeywords(ajv);

/** Compiled validators, one per schema object; compiling costs milliseconds, validating microseconds. */
const compiled = new WeakMap<TSchema, ValidateFunction>();

/** How many validation errors one message names at most; the rest are counted. */
const MAX_ERRORS_NAMED = 5;

function validatorFor(schema: TSchema): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

/** Validates `data` against a TypeBox schema; the error text names each failing path and why. */
export function validateWith<S extends TSchema>(schema: S, data: unknown): ValidationResult<Static<S>> {
  const validate = validatorFor(schema);
  if (validate(data)) return { ok: true, value: data as Static<S> };
  return { ok: false, error: describeErrors(validate.errors ?? []) };
}

/**
 * Validates a message body against the schema of its routing key. Validators are compiled once and cached.
 * On failure `error` names the failing field paths (JSON Pointer) and reasons, e.g.
 * `/studies/0/studyInstanceUid: must match pattern "^[0-9.]{1,64}$"`.
 */
export function validateMessage<K extends SchemaRoutingKey>(
  key: K,
  data: unknown,
): ValidationResult<MessageOf<K>> {
  // Widened on purpose: TypeScript cannot relate an indexed schema union back to MessageOf<K>.
  const schema: TSchema = MESSAGE_SCHEMAS[key];
  return validateWith(schema, data) as ValidationResult<MessageOf<K>>;
}

/** Validates a parsed `<receiptId>.index.json` object. */
export function validateReceiptIndex(data: unknown): ValidationResult<ReceiptIndex> {
  return validateWith(ReceiptIndex, data);
}

function describeErrors(errors: readonly ErrorObject[]): string {
  const named = errors.slice(0, MAX_ERRORS_NAMED).map(describeError);
  const rest = errors.length - named.length;
  if (rest > 0) named.push(`(${rest} more)`);
  return named.length > 0 ? named.join('; ') : 'invalid';
}

function describeError(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${error.instancePath}/${String(params.missingProperty)}: is required`;
    case 'additionalProperties':
      return `${error.instancePath}/${String(params.additionalProperty)}: is not allowed`;
    case 'enum':
      return `${pathOf(error)}: must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `${pathOf(error)}: ${error.message ?? 'is invalid'}`;
  }
}

function pathOf(error: ErrorObject): string {
  return error.instancePath === '' ? '(body)' : error.instancePath;
}

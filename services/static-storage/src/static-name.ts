import { PermanentError } from '@dicomflow/runtime';

/** What a static content name may look like (the `name` of a flow's `static_mounts: ["name:/path"]`). */
export const STATIC_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Suffix of every object and folder file: `<name>.tar`. */
export const TAR_SUFFIX = '.tar';

const RULE =
  'a name is 1 to 128 letters, digits, ".", "_" or "-", starts with a letter or digit, and holds no ".." or "/"';

/** Why `name` is not a valid static content name, or `undefined` when it is. */
export function staticNameProblem(name: string): string | undefined {
  if (name === '') return 'the name is empty';
  if (name.includes('/') || name.includes('\\') || name.includes('..')) {
    return `"${printable(name)}" is not allowed: ${RULE} (no paths)`;
  }
  if (!STATIC_NAME_PATTERN.test(name)) return `"${printable(name)}" is not a valid name: ${RULE}`;
  return undefined;
}

/** Returns `name` when it is a valid static content name; throws a PermanentError (HTTP 400) saying why not. */
export function parseStaticName(name: string): string {
  const problem = staticNameProblem(name);
  if (problem !== undefined) throw new PermanentError(`invalid static content name: ${problem}`);
  return name;
}

/** The object key (and folder file name) of a static content name. */
export function tarFileName(name: string): string {
  return `${name}${TAR_SUFFIX}`;
}

/** The static content name of an object key or folder file name, or `undefined` when it is not one of ours. */
export function nameOfTarFile(fileName: string): string | undefined {
  if (!fileName.endsWith(TAR_SUFFIX)) return undefined;
  const name = fileName.slice(0, -TAR_SUFFIX.length);
  return staticNameProblem(name) === undefined ? name : undefined;
}

// Names come from URLs and folders: keep control characters and very long input out of messages and logs.
function printable(name: string): string {
  const cleaned = name.replace(/[^\x20-\x7e]/g, '?');
  return cleaned.length > 140 ? `${cleaned.slice(0, 140)}...` : cleaned;
}

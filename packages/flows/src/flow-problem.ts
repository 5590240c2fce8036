import type { FlowPath } from '@dicomflow/messages';

/** Why a flow file cannot be used, located for its author. */
export interface FlowProblem {
  /** The file as it was named to the loader. */
  readonly file: string;
  /** 1-based line the problem is on (1 when it concerns the file as a whole). */
  readonly line: number;
  /**
   * The field, e.g. `models[0].docker_kwargs.privileged`; `(file)` when the file cannot be read, `(yaml)`
   * for YAML syntax, `(flow)` for the flow as a whole.
   */
  readonly field: string;
  readonly reason: string;
}

/** `file:line: field: reason`, the form `dicomflow validate` prints and editors can jump to. */
export function formatProblem(problem: FlowProblem): string {
  return `${problem.file}:${problem.line}: ${problem.field}: ${problem.reason}`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A field path as a flow author reads it: `models[0].docker_kwargs.image`; keys that are not identifiers are
 * quoted, `triggers[0]["(0010,0010)"]`. The empty path is `(flow)`.
 */
export function formatFieldPath(path: FlowPath): string {
  if (path.length === 0) return '(flow)';
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (!IDENTIFIER.test(segment)) text += `[${JSON.stringify(segment)}]`;
    else text += text === '' ? segment : `.${segment}`;
  }
  return text;
}

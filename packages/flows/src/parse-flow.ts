import { checkFlowDefinition, type FlowDefinition, type FlowIssue } from '@dicomflow/messages';
import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import { formatFieldPath, type FlowProblem } from './flow-problem.js';
import { checkTarSubdir, checkTriggers } from './trigger-patterns.js';
import { lineOfPath } from './yaml-lines.js';

/** The outcome of {@link parseFlow}: a usable flow, or every problem found. */
export type ParseFlowResult =
  | { readonly ok: true; readonly flow: FlowDefinition }
  | { readonly ok: false; readonly problems: readonly FlowProblem[] };

/** Flow files are small; a bigger one is a mistake (and aliases could expand it without bound). */
const MAX_ALIAS_COUNT = 100;

/**
 * Parses one flow file's text: YAML (one document) -> schema check with defaults -> trigger keys known and
 * patterns compile. Every problem carries `file`, the line and the field path.
 */
export function parseFlow(text: string, file: string): ParseFlowResult {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problem = (line: number, field: string, reason: string): FlowProblem => ({
    file,
    line,
    field,
    reason,
  });
  if (!Array.isArray(docs) || docs.length === 0 || docs[0]?.contents === null) {
    return { ok: false, problems: [problem(1, '(flow)', 'the file is empty')] };
  }
  const syntax = docs.flatMap((doc) => doc.errors);
  if (syntax.length > 0) {
    return {
      ok: false,
      problems: syntax.map((error) => problem(lines.linePos(error.pos[0]).line, '(yaml)', error.message)),
    };
  }
  const [doc, second] = docs as [Document.Parsed, ...Document.Parsed[]];
  if (second !== undefined) {
    const line = lines.linePos(second.range[0]).line;
    return {
      ok: false,
      problems: [problem(line, '(yaml)', 'a flow file holds one flow: remove the "---" and what follows')],
    };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    return { ok: false, problems: [problem(1, '(yaml)', (err as Error).message)] };
  }
  const located = (issue: FlowIssue): FlowProblem =>
    problem(lineOfPath(doc.contents, issue.path, lines), formatFieldPath(issue.path), issue.reason);
  const checked = checkFlowDefinition(data);
  const fields = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const issues = [
    ...(checked.ok ? [] : checked.issues),
    ...checkTriggers(fields.triggers).issues,
    ...checkTarSubdir(fields.tar_subdir),
  ];
  if (!checked.ok || issues.length > 0) {
    return { ok: false, problems: issues.map(located).sort((a, b) => a.line - b.line) };
  }
  return { ok: true, flow: checked.flow };
}

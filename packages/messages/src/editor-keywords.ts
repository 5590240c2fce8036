import type { Ajv } from 'ajv';

/**
 * Annotations our schemas carry for editors (vscode-json-languageservice / yaml-language-server show them
 * instead of a generic message). Ajv in strict mode refuses unknown keywords, so every instance that compiles
 * our schemas registers them as annotations.
 */
const EDITOR_KEYWORDS = ['errorMessage', 'patternErrorMessage'] as const;

/** Registers {@link EDITOR_KEYWORDS} on `ajv` as annotation-only keywords. */
export function addEditorKeywords(ajv: Ajv): void {
  for (const keyword of EDITOR_KEYWORDS) ajv.addKeyword({ keyword, schemaType: 'string' });
}

import { FlowDefinition } from './flow-definition.js';

/**
 * The JSON Schema (draft-07) of a flow file, as committed in `packages/messages/schemas/flow.schema.json`
 * for editors (`# yaml-language-server: $schema=...`). Plain JSON: TypeBox's symbol keys are dropped.
 */
export function flowJsonSchema(): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(FlowDefinition)) as Record<string, unknown>;
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'DicomFlow flow definition',
    ...plain,
  };
}

import { describe, expect, it } from 'vitest';
import { checkFlowDefinition, isSchemaRoutingKey, messageJsonSchemas, validateMessage } from './index.js';
import type { FlowMatched } from './index.js';

const receiptId = '6f1c7d7e-3f7b-4a8e-9d55-2a3f5d0c1b9e';

function validFlowMatched(): FlowMatched {
  const checked = checkFlowDefinition({
    name: 'ct',
    triggers: [{ Modality: 'CT' }],
    models: [{ docker_kwargs: { image: 'a' } }],
  });
  if (!checked.ok) throw new Error('fixture flow is invalid');
  return {
    runId: '0b7f4d3e-2c1a-4f5e-8d9c-7b6a5f4e3d2c',
    receiptId,
    matchedAt: '2024-05-01T12:00:01.000Z',
    flowFile: 'ct.yaml',
    flow: checked.flow,
    flowHash: 'a'.repeat(64),
    bucket: 'dicomflow',
    tarKey: `incoming/${receiptId}.tar`,
    indexKey: `incoming/${receiptId}.index.json`,
    members: ['1.2.3/1.2.3.4/1.2.3.4.5.dcm'],
    tarSubdir: ['StudyInstanceUID'],
    priority: 0,
    callingAeTitle: 'SCANNER1',
    callingHost: '10.0.0.7',
  };
}

function errorOf(result: { ok: true } | { ok: false; error: string }): string {
  if (result.ok) throw new Error('expected a validation failure');
  return result.error;
}

describe('validateMessage(flow.matched)', () => {
  it('is a schema routing key', () => {
    expect(isSchemaRoutingKey('flow.matched')).toBe(true);
  });

  it('accepts a valid body carrying the flow definition', () => {
    const body = validFlowMatched();
    expect(validateMessage('flow.matched', body)).toEqual({ ok: true, value: body });
  });

  it('refuses an empty member list', () => {
    expect(errorOf(validateMessage('flow.matched', { ...validFlowMatched(), members: [] }))).toBe(
      '/members: must NOT have fewer than 1 items',
    );
  });

  it('refuses a hash that is not sha256 hex', () => {
    expect(errorOf(validateMessage('flow.matched', { ...validFlowMatched(), flowHash: 'abc' }))).toMatch(
      /^\/flowHash: must match pattern/,
    );
  });

  it('refuses a priority outside 0-5 and an unknown field', () => {
    const error = errorOf(validateMessage('flow.matched', { ...validFlowMatched(), priority: 7, extra: 1 }));
    expect(error).toContain('/extra: is not allowed');
    expect(error).toContain('/priority: must be <= 5');
  });

  it('refuses a flow definition with a refused docker key', () => {
    const body = validFlowMatched();
    const model = body.flow.models[0];
    if (!model) throw new Error('fixture has no model');
    Object.assign(model.docker_kwargs, { privileged: true });
    expect(errorOf(validateMessage('flow.matched', body))).toBe(
      '/flow/models/0/docker_kwargs/privileged: is not allowed',
    );
  });

  it('refuses a flow definition without its defaults filled in', () => {
    const body = validFlowMatched();
    const { gpu: _gpu, ...model } = body.flow.models[0] ?? { gpu: false };
    const { priority: _priority, ...flow } = { ...body.flow, models: [model] };
    const error = errorOf(validateMessage('flow.matched', { ...body, flow }));
    expect(error).toContain('/flow/priority: is required');
    expect(error).toContain('/flow/models/0/gpu: is required');
  });

  it('leaves the flow file schema itself with optional defaulted fields', () => {
    expect(checkFlowDefinition({}).ok).toBe(true);
  });

  it('is exported as plain JSON Schema', () => {
    expect(messageJsonSchemas()['flow.matched']).toMatchObject({ $id: 'dicomflow:message:flow.matched' });
  });
});

import { describe, expect, it } from 'vitest';
import { isRoutingKey, messageJsonSchemas, validateMessage, type SendRetrying } from './index.js';

function retrying(): SendRetrying {
  return {
    runId: '0b7f4d3e-2c1a-4f5e-8d9c-7b6a5f4e3d2c',
    receiptId: '6f1c7d7e-3f7b-4a8e-9d55-2a3f5d0c1b9e',
    flowName: 'ct',
    flowVersion: '1',
    flowFile: 'ct.yaml',
    retryingAt: '2026-01-05T10:00:10.000Z',
    target: { kind: 'destination', host: 'pacs.example', port: 104, aeTitle: 'PACS' },
    attempt: 2,
    maxAttempts: 10,
    nextAttemptAt: '2026-01-05T10:00:14.000Z',
    error: { code: 'ECONNREFUSED', message: 'pacs.example:104: connect ECONNREFUSED 10.0.0.9:104' },
  };
}

describe('send.retrying', () => {
  it('is a routing key with a schema', () => {
    expect(isRoutingKey('send.retrying')).toBe(true);
    expect(messageJsonSchemas()['send.retrying']).toMatchObject({
      $id: 'dicomflow:message:send.retrying',
      additionalProperties: false,
    });
  });

  it('accepts a retry with its target, error and next attempt', () => {
    expect(validateMessage('send.retrying', retrying())).toEqual({ ok: true, value: retrying() });
  });

  it('wants an error code and a first attempt of at least 1', () => {
    const noCode = { ...retrying(), error: { code: '', message: 'x' } };
    expect(validateMessage('send.retrying', noCode).ok).toBe(false);
    expect(validateMessage('send.retrying', { ...retrying(), attempt: 0 }).ok).toBe(false);
    const { nextAttemptAt: _next, ...noNext } = retrying();
    expect(validateMessage('send.retrying', noNext)).toMatchObject({ ok: false });
  });
});

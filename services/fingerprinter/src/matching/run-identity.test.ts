import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { flowMatchedMessageIdFor, runIdFor } from './run-identity.js';

const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('run identity', () => {
  it('gives the same run id for the same receipt and flow file, every time', () => {
    const receiptId = randomUUID();
    expect(runIdFor(receiptId, 'ct.yaml')).toBe(runIdFor(receiptId, 'ct.yaml'));
    expect(runIdFor(receiptId, 'ct.yaml')).toBe(runIdFor(receiptId.toUpperCase(), 'ct.yaml'));
    expect(runIdFor(receiptId, 'ct.yaml')).toMatch(UUID_V5);
  });

  it('pins the derivation: a changed namespace or name layout would restart every redelivered run', () => {
    expect(runIdFor('1b4e28ba-2fa1-4d2b-883f-0016d3cca427', 'ct.yaml')).toBe(
      '74dc94ea-9ed1-5ec8-835a-f636f7d4e058',
    );
  });

  it('differs between receipts and between flow files', () => {
    const a = randomUUID();
    const b = randomUUID();
    const ids = new Set([
      runIdFor(a, 'ct.yaml'),
      runIdFor(a, 'mr.yaml'),
      runIdFor(b, 'ct.yaml'),
      runIdFor(b, 'mr.yaml'),
    ]);
    expect(ids.size).toBe(4);
  });

  it('derives a message id per run that is stable and not the run id', () => {
    const runId = runIdFor(randomUUID(), 'ct.yaml');
    expect(flowMatchedMessageIdFor(runId)).toBe(flowMatchedMessageIdFor(runId));
    expect(flowMatchedMessageIdFor(runId)).not.toBe(runId);
    expect(flowMatchedMessageIdFor(runId)).toMatch(UUID_V5);
  });
});

import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  rerunMessageId,
  rerunRunIdFor,
  resendMessageId,
  sendFinishedMessageId,
  sendStartedMessageId,
  validateMessage,
  type FlowFinished,
  type FlowRerun,
} from './index.js';

const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const finished: FlowFinished = {
  runId: randomUUID(),
  receiptId: randomUUID(),
  flowName: 'CT copy',
  flowVersion: '1',
  flowFile: 'ct.yaml',
  finishedAt: '2026-03-01T10:00:00.000Z',
  stepCount: 1,
  output: { bucket: 'runs', key: 'r/0/output.tar' },
  destinations: [{ host: 'pacs', port: 104, ae_title: 'PACS' }],
  returnToSender: { host: '10.0.0.7', aeTitle: 'SCANNER', ports: [] },
};

describe('recovery messages', () => {
  it('accepts a flow.finished with or without a resend, and refuses a malformed one', () => {
    expect(validateMessage('flow.finished', finished).ok).toBe(true);
    const resend = { id: randomUUID(), requestedAt: '2026-03-02T08:00:00.000Z' };
    expect(validateMessage('flow.finished', { ...finished, resend }).ok).toBe(true);
    expect(validateMessage('flow.finished', { ...finished, resend: { id: 'x' } })).toEqual({
      ok: false,
      error: expect.stringContaining('/resend') as unknown,
    });
  });

  it('validates flow.rerun', () => {
    const rerunOf = randomUUID();
    const rerunId = randomUUID();
    const request: FlowRerun = {
      runId: rerunRunIdFor(rerunOf, rerunId),
      rerunOf,
      rerunId,
      requestedAt: '2026-03-02T08:00:00.000Z',
      receiptId: finished.receiptId,
      flowFile: 'ct.yaml',
      flowName: 'CT copy',
      flowVersion: '1',
      bucket: 'incoming',
      tarKey: 'r.tar',
      indexKey: 'r.index.jsonl',
      tarSubdir: [],
      callingAeTitle: 'SCANNER',
      callingHost: '10.0.0.7',
    };
    expect(validateMessage('flow.rerun', request).ok).toBe(true);
    expect(validateMessage('flow.rerun', { ...request, members: ['a'] }).ok).toBe(false);
  });

  it('derives a rerun run id from the run and the rerun id, the same every time', () => {
    const runId = randomUUID();
    const rerunId = randomUUID();
    expect(rerunRunIdFor(runId, rerunId)).toBe(rerunRunIdFor(runId.toUpperCase(), rerunId));
    expect(rerunRunIdFor(runId, rerunId)).toMatch(UUID_V5);
    expect(rerunRunIdFor(runId, randomUUID())).not.toBe(rerunRunIdFor(runId, rerunId));
    // Pinned: a changed derivation would give a redelivered rerun request a second run.
    expect(
      rerunRunIdFor('1b4e28ba-2fa1-4d2b-883f-0016d3cca427', '9c5b94b1-35ad-49bb-b118-8e8fc24abf80'),
    ).toBe('6d850c37-ff52-5aea-bd27-81c9f8f85a86');
  });

  it('gives a resend message ids of its own, and the run the ids it always had', () => {
    expect(resendMessageId('r', 'x')).toBe('r:resend:x');
    expect(rerunMessageId('r', 'y')).toBe('r:rerun:y');
    expect(sendStartedMessageId('r')).toBe('r:send.started');
    expect(sendStartedMessageId('r', 'x')).toBe('r:resend:x:send.started');
    expect(sendFinishedMessageId('r', 'x')).toBe('r:resend:x:send.finished');
  });
});

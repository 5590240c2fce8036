import { describe, expect, it } from 'vitest';
import { judgeStowAnswer, readStoreResponse, type StowAnswer } from './stow-response.js';

const batch = [{ sopInstanceUid: '1.2.3.1' }, { sopInstanceUid: '1.2.3.2' }, { sopInstanceUid: '1.2.3.3' }];

/** One item of a response sequence, as the DICOM JSON model writes it. */
function item(uid: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    '00081150': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] },
    '00081155': { vr: 'UI', Value: [uid] },
    ...extra,
  };
}

function answer(status: number, body: unknown = '', statusText = ''): StowAnswer {
  return { status, statusText, body: typeof body === 'string' ? body : JSON.stringify(body) };
}

const failureReason = (value: unknown) => ({ '00081197': { vr: 'US', Value: [value] } });
const warningReason = (value: unknown) => ({ '00081196': { vr: 'US', Value: [value] } });

describe('judgeStowAnswer: answers per instance', () => {
  it('200 with every instance referenced: all stored', () => {
    const body = { '00081199': { vr: 'SQ', Value: batch.map((i) => item(i.sopInstanceUid)) } };
    expect(judgeStowAnswer(answer(200, body), batch)).toEqual({
      kind: 'instances',
      verdicts: [
        { kind: 'stored', status: 0 },
        { kind: 'stored', status: 0 },
        { kind: 'stored', status: 0 },
      ],
    });
  });

  it('200 without a readable body (XML, nothing): all stored, since 200 says so', () => {
    for (const body of ['', '<?xml version="1.0"?><NativeDicomModel/>', '{"00081199": 3}'])
      expect(judgeStowAnswer(answer(200, body), batch)).toEqual({
        kind: 'instances',
        verdicts: batch.map(() => ({ kind: 'stored', status: 0 })),
      });
  });

  it('202: stored with warnings, refused with reasons, deferred on 0xA7xx, unlisted refused', () => {
    const body = {
      '00081199': { vr: 'SQ', Value: [item('1.2.3.1', warningReason(0xb000))] },
      '00081198': {
        vr: 'SQ',
        Value: [item('1.2.3.2', failureReason(0x0122)), item('1.2.3.4', failureReason(0xa700))],
      },
    };
    const verdict = judgeStowAnswer(answer(202, body, 'Accepted'), [...batch, { sopInstanceUid: '1.2.3.4' }]);
    expect(verdict).toEqual({
      kind: 'instances',
      verdicts: [
        { kind: 'stored', status: 0xb000 },
        {
          kind: 'refused',
          status: 0x0122,
          message: 'STOW-RS FailureReason 0x0122 (SOP class not supported)',
        },
        {
          kind: 'refused',
          message: "the server's answer (HTTP 202 Accepted) does not list the instance as stored",
        },
        { kind: 'deferred', status: 0xa700, message: 'STOW-RS FailureReason 0xA700 (out of resources)' },
      ],
    });
  });

  it('409: nothing stored; each instance with its reason when the body gives one', () => {
    const body = { '00081198': { vr: 'SQ', Value: [item('1.2.3.1', failureReason(0xc000))] } };
    const verdict = judgeStowAnswer(answer(409, body, 'Conflict'), batch.slice(0, 2));
    expect(verdict).toEqual({
      kind: 'instances',
      verdicts: [
        { kind: 'refused', status: 0xc000, message: 'STOW-RS FailureReason 0xC000 (cannot understand)' },
        { kind: 'refused', message: "the server stored none of the request's instances (HTTP 409 Conflict)" },
      ],
    });
  });

  it('a failed item without a reason is refused, and failure wins over a reference', () => {
    const body = {
      '00081199': { vr: 'SQ', Value: [item('1.2.3.1')] },
      '00081198': { vr: 'SQ', Value: [item('1.2.3.1')] },
    };
    expect(judgeStowAnswer(answer(200, body, 'OK'), batch.slice(0, 1))).toEqual({
      kind: 'instances',
      verdicts: [{ kind: 'refused', message: 'refused by the server (HTTP 200 OK), no reason given' }],
    });
  });
});

describe('judgeStowAnswer: answers for the whole request', () => {
  it.each([408, 429, 500, 502, 503, 504])('%i is transient', (status) => {
    expect(judgeStowAnswer(answer(status), batch)).toEqual({
      kind: 'transient',
      code: `HTTP ${status}`,
      message: `the server answered HTTP ${status}`,
    });
  });

  it.each([
    [400, ''],
    [401, 'check token or token_file'],
    [403, 'not allowed to store'],
    [404, 'instances go to <url>/studies'],
    [405, ''],
    [413, 'SEND_STOW_BATCH_BYTES'],
    [415, ''],
  ])('%i is permanent, with a hint', (status, hint) => {
    const verdict = judgeStowAnswer(answer(status, '{"00081198": {}}', 'Nope'), batch);
    expect(verdict).toMatchObject({ kind: 'permanent', code: `HTTP ${status}` });
    expect(verdict.kind === 'permanent' && verdict.message).toContain(`HTTP ${status} Nope`);
    expect(verdict.kind === 'permanent' && verdict.message).toContain(hint);
  });

  it('a redirect is permanent and names where it pointed', () => {
    const verdict = judgeStowAnswer(
      { status: 301, statusText: 'Moved', body: '', location: 'https://pacs/dicom-web/studies' },
      batch,
    );
    expect(verdict).toMatchObject({ kind: 'permanent', code: 'HTTP 301' });
    expect(verdict.kind === 'permanent' && verdict.message).toContain('(to https://pacs/dicom-web/studies)');
  });
});

describe('readStoreResponse', () => {
  it('reads lower-case tags, a list holding the dataset, and reasons written as hex strings', () => {
    const listed = readStoreResponse(
      JSON.stringify([
        {
          '00081199': { vr: 'SQ', Value: [{ '00081155': { vr: 'UI', Value: ['1.2.3.1\u0000'] } }] },
          '0008119a': undefined,
          '00081198': {
            vr: 'SQ',
            Value: [
              { '00081155': { vr: 'UI', Value: ['1.2.3.2'] }, '00081197': { vr: 'US', Value: ['0110'] } },
              { '00081155': { vr: 'UI', Value: ['1.2.3.3'] }, '00081197': { vr: 'US', Value: ['A700'] } },
              { '00081155': { vr: 'UI', Value: ['1.2.3.5'] }, '00081197': { vr: 'US', Value: [70000] } },
            ],
          },
        },
      ]).replace('"00081198"', '"00081198"'.toLowerCase()),
    );
    expect(listed.stored).toEqual(new Map([['1.2.3.1', 0]]));
    expect(listed.failed).toEqual(
      new Map([
        ['1.2.3.2', 0x0110],
        ['1.2.3.3', 0xa700],
        ['1.2.3.5', null],
      ]),
    );
  });

  it('lists nothing for what is not DICOM JSON', () => {
    for (const body of ['', 'null', '[]', '"x"', '{"00081199": {"Value": "not a list"}}', '<xml/>']) {
      const listed = readStoreResponse(body);
      expect([listed.stored.size, listed.failed.size]).toEqual([0, 0]);
    }
  });
});

import { describe, expect, it } from 'vitest';
import {
  checkFlowDefinition,
  destinationText,
  sendTargetText,
  validateMessage,
  type FlowIssue,
} from './index.js';

function issuesOf(destination: unknown): readonly FlowIssue[] {
  const result = checkFlowDefinition({ destinations: [destination] });
  if (result.ok) throw new Error('expected the flow to be refused');
  return result.issues;
}

describe('flow destinations: DICOMweb servers', () => {
  it.each([
    ['a url alone', { url: 'http://pacs.example:8042/dicom-web' }],
    ['https with a token', { url: 'https://pacs.example/dicom-web', token: 'eyJhbGciOi.J9xx-_~+/==' }],
    ['a token file', { url: 'https://pacs.example/dicom-web/', token_file: 'pacs-token.txt' }],
    ['a url with a query', { url: 'https://pacs.example/dicomweb?tenant=a@b' }],
  ])('accepts %s', (_name, destination) => {
    const result = checkFlowDefinition({ destinations: [destination] });
    expect(result.ok && result.flow.destinations).toEqual([destination]);
  });

  it('accepts DICOM nodes and DICOMweb servers side by side', () => {
    const destinations = [
      { host: 'pacs', port: 104, ae_title: 'PACS' },
      { url: 'http://orthanc:8042/dicom-web' },
    ];
    const result = checkFlowDefinition({ destinations });
    expect(result.ok && result.flow.destinations).toEqual(destinations);
  });

  it.each<[string, unknown, FlowIssue]>([
    [
      'fields of both forms',
      { host: 'pacs', port: 104, ae_title: 'PACS', url: 'http://pacs/dicom-web' },
      {
        path: ['destinations', 0],
        reason:
          'must be a DICOM node (host, port, ae_title) or a DICOMweb server (url, optionally token or token_file), not both',
      },
    ],
    [
      'neither form',
      {},
      { path: ['destinations', 0], reason: expect.stringContaining('must be a DICOM node') as string },
    ],
    [
      'a url that is not http(s)',
      { url: 'ftp://pacs/dicom-web' },
      { path: ['destinations', 0, 'url'], reason: expect.stringContaining('http:// or https://') as string },
    ],
    [
      'a url with a password',
      { url: 'https://user:secret@pacs/dicom-web' },
      { path: ['destinations', 0, 'url'], reason: expect.stringContaining('without user name') as string },
    ],
    [
      'token and token_file both',
      { url: 'https://pacs/dicom-web', token: 'abc', token_file: 'pacs' },
      { path: ['destinations', 0], reason: 'give token or token_file, not both' },
    ],
    [
      'a token with a line break',
      { url: 'https://pacs/dicom-web', token: 'abc\r\nX-Evil: 1' },
      { path: ['destinations', 0, 'token'], reason: expect.stringContaining('bearer token') as string },
    ],
    [
      'a token file that is a path',
      { url: 'https://pacs/dicom-web', token_file: '../etc/passwd' },
      {
        path: ['destinations', 0, 'token_file'],
        reason: expect.stringContaining('SENDER_TOKEN_DIR') as string,
      },
    ],
    ['a token without url', { token: 'abc' }, { path: ['destinations', 0, 'url'], reason: 'is required' }],
    [
      'a misspelt field of a DICOMweb server',
      { url: 'https://pacs/dicom-web', tokn: 'abc' },
      { path: ['destinations', 0, 'tokn'], reason: 'is not a known field (did you mean token?)' },
    ],
  ])('refuses %s, naming the field', (_name, destination, issue) => {
    expect(issuesOf(destination)).toContainEqual(issue);
  });

  it('reports each destination of a list by its own form', () => {
    const result = checkFlowDefinition({
      destinations: [
        { url: 'https://pacs/dicom-web', token: 'abc', token_file: 'pacs' },
        { url: 'https://pacs/dicom-web', host: 'pacs' },
        { host: 'pacs', port: 70000, ae_title: 'PACS' },
      ],
    });
    expect(result.ok ? [] : result.issues).toEqual([
      { path: ['destinations', 0], reason: 'give token or token_file, not both' },
      { path: ['destinations', 1], reason: expect.stringContaining('not both') as string },
      { path: ['destinations', 2, 'port'], reason: 'must be <= 65535' },
    ]);
  });

  it('reports a DICOM node by its own fields only, not the DICOMweb form', () => {
    expect(issuesOf({ host: 'pacs', port: 0, ae_title: 'PACS' })).toEqual([
      { path: ['destinations', 0, 'port'], reason: 'must be >= 1' },
    ]);
  });

  it('names each destination for people, never with its token', () => {
    expect(destinationText({ url: 'https://pacs/dicom-web', token: 'secret' })).toBe(
      'https://pacs/dicom-web',
    );
    expect(destinationText({ host: 'pacs', port: 104, ae_title: 'PACS' })).toBe('PACS@pacs:104');
    expect(sendTargetText({ kind: 'destination', url: 'https://pacs/dicom-web' })).toBe(
      'https://pacs/dicom-web',
    );
  });

  it('lets send events carry a DICOMweb target, but not its token', () => {
    const retrying = {
      runId: '0b9f7a3e-5a55-4d0b-9a43-7a4c1f3d2e10',
      receiptId: '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f',
      flowName: 'f',
      flowVersion: '1',
      flowFile: 'f.yaml',
      retryingAt: '2026-01-01T00:00:00.000Z',
      target: { kind: 'destination', url: 'https://pacs/dicom-web' },
      attempt: 1,
      maxAttempts: 3,
      nextAttemptAt: '2026-01-01T00:00:02.000Z',
      error: { code: 'HTTP 503', message: 'STOW-RS answered HTTP 503' },
    };
    expect(validateMessage('send.retrying', retrying).ok).toBe(true);
    const withToken = { ...retrying, target: { ...retrying.target, token: 'secret' } };
    expect(validateMessage('send.retrying', withToken).ok).toBe(false);
  });
});

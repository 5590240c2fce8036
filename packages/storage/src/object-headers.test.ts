import { describe, expect, it } from 'vitest';
import { objectHeaders, sanitizeEtag } from './object-headers.js';

describe('objectHeaders', () => {
  it('prefixes user metadata and keeps standard headers', () => {
    expect(
      objectHeaders({ 'Content-Type': 'application/x-tar', receiptId: 'r1', 'x-amz-meta-step': '2' }),
    ).toEqual({
      'content-type': 'application/x-tar',
      'x-amz-meta-receiptid': 'r1',
      'x-amz-meta-step': '2',
    });
  });

  it('defaults the content type to an octet stream', () => {
    expect(objectHeaders()).toEqual({ 'content-type': 'application/octet-stream' });
  });
});

describe('sanitizeEtag', () => {
  it('strips quotes', () => {
    expect(sanitizeEtag('"abc"')).toBe('abc');
    expect(sanitizeEtag('&quot;abc&quot;')).toBe('abc');
    expect(sanitizeEtag(undefined)).toBe('');
  });
});

import { StoreScuError } from '@dicomflow/dicom';
import { describe, expect, it } from 'vitest';
import { associationFailure, statusFailure } from './retry-reason.js';

describe('associationFailure', () => {
  it('takes the system error code of a failed connection', () => {
    const refused = new StoreScuError('connect', true, 'pacs:104: connect ECONNREFUSED 10.0.0.9:104');
    expect(associationFailure(refused)).toEqual({ code: 'ECONNREFUSED', message: refused.message });
    const dns = new StoreScuError('connect', true, 'nowhere:104: getaddrinfo ENOTFOUND nowhere');
    expect(associationFailure(dns).code).toBe('ENOTFOUND');
    const reset = new StoreScuError('aborted', true, 'connection failed: read ECONNRESET');
    expect(associationFailure(reset).code).toBe('ECONNRESET');
  });

  it('never takes a host name in capitals for a code', () => {
    const err = new StoreScuError('aborted', true, 'EIO.EXAMPLE:104: connection closed by the peer');
    expect(associationFailure(err).code).toBe('aborted');
  });

  it('falls back to the kind of failure', () => {
    const timeout = new StoreScuError('timeout', true, 'no association answer in 5000 ms');
    expect(associationFailure(timeout)).toEqual({ code: 'timeout', message: timeout.message });
    const rejected = new StoreScuError(
      'rejected',
      true,
      'association rejected transiently: local limit exceeded',
    );
    expect(associationFailure(rejected).code).toBe('rejected');
  });
});

describe('statusFailure', () => {
  it('names the DICOM status in hex', () => {
    expect(statusFailure(0xa700, 'C-STORE status 0xA700: disk full')).toEqual({
      code: '0xA700',
      message: 'C-STORE status 0xA700: disk full',
    });
    expect(statusFailure(0xa7, 'x').code).toBe('0x00A7');
  });
});

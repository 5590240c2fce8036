import { describe, expect, it } from 'vitest';
import { FailureReason, storeInstancesResponse, storeInstancesStatus } from './stow-response.js';

describe('storeInstancesStatus', () => {
  it('is 200 when all are stored, 202 when some failed, 409 when none is stored', () => {
    expect(storeInstancesStatus(3, 0)).toBe(200);
    expect(storeInstancesStatus(2, 1)).toBe(202);
    expect(storeInstancesStatus(0, 2)).toBe(409);
  });
});

describe('storeInstancesResponse', () => {
  it('lists stored instances in ReferencedSOPSequence and failed ones with their reason in FailedSOPSequence', () => {
    const response = storeInstancesResponse(
      [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUid: '1.2.3' }],
      [
        {
          sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
          sopInstanceUid: '1.2.4',
          failureReason: FailureReason.StudyInstanceUidMismatch,
          comment: 'the StudyInstanceUID does not match the study of the request',
        },
        { sopClassUid: '', sopInstanceUid: '', failureReason: 0xc000, comment: 'x'.repeat(100) },
      ],
    );
    expect(response).toEqual({
      '00081190': { vr: 'UR' },
      '00081199': {
        vr: 'SQ',
        Value: [
          {
            '00081150': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] },
            '00081155': { vr: 'UI', Value: ['1.2.3'] },
            '00081190': { vr: 'UR' },
          },
        ],
      },
      '00081198': {
        vr: 'SQ',
        Value: [
          {
            '00081150': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] },
            '00081155': { vr: 'UI', Value: ['1.2.4'] },
            '00081197': { vr: 'US', Value: [0xc409] },
            '00000902': { vr: 'LO', Value: ['the StudyInstanceUID does not match the study of the request'] },
          },
          {
            '00081150': { vr: 'UI' },
            '00081155': { vr: 'UI' },
            '00081197': { vr: 'US', Value: [0xc000] },
            '00000902': { vr: 'LO', Value: ['x'.repeat(64)] },
          },
        ],
      },
    });
  });

  it('leaves out the sequences that would be empty', () => {
    expect(storeInstancesResponse([], [])).toEqual({ '00081190': { vr: 'UR' } });
  });
});

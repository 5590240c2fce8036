import { describe, expect, it } from 'vitest';
import { DimseSendTarget, FlowDestination, validateWith } from './index.js';

describe('DICOM TLS in a flow destination', () => {
  it('takes tls: true or false on a DICOM node, and no tls at all (plain, as before)', () => {
    for (const tls of [true, false, undefined]) {
      const destination = {
        host: 'pacs',
        port: 2762,
        ae_title: 'PACS',
        ...(tls === undefined ? {} : { tls }),
      };
      expect(validateWith(FlowDestination, destination).ok).toBe(true);
    }
  });

  it('refuses a tls that is not a boolean, and tls on a DICOMweb server', () => {
    expect(validateWith(FlowDestination, { host: 'pacs', port: 2762, ae_title: 'PACS', tls: 'yes' }).ok).toBe(
      false,
    );
    expect(validateWith(FlowDestination, { url: 'https://pacs/dicom-web', tls: true }).ok).toBe(false);
  });

  it('carries tls in the send target of events', () => {
    const target = { kind: 'destination', host: 'pacs', port: 2762, aeTitle: 'PACS', tls: true };
    expect(validateWith(DimseSendTarget, target).ok).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { flowFinished } from '../testing/sender-harness.js';
import { credentialsOf, targetsOf } from './send-run.js';

describe('targetsOf', () => {
  it('lists the destinations, then the sender on each port, each node once', () => {
    const finished = flowFinished({
      output: { bucket: 'runs', key: 'x/1/output.tar' },
      destinations: [
        { host: 'pacs', port: 104, ae_title: 'PACS' },
        { host: 'pacs', port: 104, ae_title: 'PACS' },
        { host: 'scanner', port: 104, ae_title: 'CT1' },
      ],
      returnToSender: { host: 'scanner', aeTitle: 'CT1', ports: [104, 11112] },
    });
    expect(targetsOf(finished)).toEqual([
      { kind: 'destination', host: 'pacs', port: 104, aeTitle: 'PACS' },
      { kind: 'destination', host: 'scanner', port: 104, aeTitle: 'CT1' },
      { kind: 'return-to-sender', host: 'scanner', port: 11112, aeTitle: 'CT1' },
    ]);
  });

  it('has no target when the flow names none', () => {
    expect(targetsOf(flowFinished({ output: { bucket: 'runs', key: 'k' } }))).toEqual([]);
  });

  it('takes DICOMweb servers by URL, once each, without their token', () => {
    const finished = flowFinished({
      output: { bucket: 'runs', key: 'k' },
      destinations: [
        { url: 'https://pacs.example/dicom-web', token: 'secret' },
        { host: 'pacs', port: 104, ae_title: 'PACS' },
        { url: 'https://pacs.example/dicom-web', token_file: 'other' },
        { url: 'http://orthanc:8042/dicom-web', token_file: 'orthanc-token' },
        { url: 'http://open.example/dicom-web' },
      ],
    });
    const targets = targetsOf(finished);
    expect(targets).toEqual([
      { kind: 'destination', url: 'https://pacs.example/dicom-web' },
      { kind: 'destination', host: 'pacs', port: 104, aeTitle: 'PACS' },
      { kind: 'destination', url: 'http://orthanc:8042/dicom-web' },
      { kind: 'destination', url: 'http://open.example/dicom-web' },
    ]);
    expect(targets.map((target) => credentialsOf(finished, target))).toEqual([
      { token: 'secret' },
      undefined,
      { token_file: 'orthanc-token' },
      undefined,
    ]);
  });
});

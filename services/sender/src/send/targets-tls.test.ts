import { describe, expect, it } from 'vitest';
import { flowFinished } from '../testing/sender-harness.js';
import { targetsOf } from './send-run.js';

describe('targetsOf with DICOM TLS destinations', () => {
  it('carries tls: true to the target, and leaves it out for plain nodes (tls false or absent)', () => {
    const finished = flowFinished({
      output: { bucket: 'runs', key: 'k' },
      destinations: [
        { host: 'pacs', port: 2762, ae_title: 'PACS', tls: true },
        { host: 'plain', port: 104, ae_title: 'PLAIN', tls: false },
        { host: 'old', port: 104, ae_title: 'OLD' },
      ],
    });
    expect(targetsOf(finished)).toEqual([
      { kind: 'destination', host: 'pacs', port: 2762, aeTitle: 'PACS', tls: true },
      { kind: 'destination', host: 'plain', port: 104, aeTitle: 'PLAIN' },
      { kind: 'destination', host: 'old', port: 104, aeTitle: 'OLD' },
    ]);
  });
});

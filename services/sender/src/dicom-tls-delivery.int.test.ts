import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  freePort,
  makeTestCertificates,
  startDcmtkStorescp,
  type TestCertificates,
} from '@dicomflow/test-helpers';
import { members, useSenderTest, type SenderTestContext } from './testing/peers.js';
import { fileCount, receivedDigests, sentDigests } from './testing/received.js';

/** dcmtk storescp over DICOM TLS with our server certificate; `clientCert`: -rc (required) or -ic (not asked). */
async function tlsStorescp(
  t: SenderTestContext,
  certs: TestCertificates,
  name: string,
  clientCert: 'required' | 'none',
): Promise<{ port: number; dir: string }> {
  const port = await freePort();
  const dir = join(t.scratch, name);
  const peer = await startDcmtkStorescp({
    port,
    outDir: dir,
    aeTitle: 'DEST',
    extraArgs: [
      '+uf',
      '+tls',
      certs.server.keyFile,
      certs.server.certFile,
      '+cf',
      certs.ca.certFile,
      clientCert === 'required' ? '-rc' : '-ic',
    ],
  });
  t.defer(() => peer.stop());
  return { port, dir };
}

describe('sender delivery to DICOM TLS nodes (tls: true)', () => {
  const t = useSenderTest();

  it('delivers every instance byte for byte over TLS, trusting SEND_TLS_CA_FILE', async () => {
    const certs = await makeTestCertificates();
    t.defer(() => certs.close());
    const node = await tlsStorescp(t, certs, 'tls', 'none');
    await t.world.startSender({ SEND_TLS_CA_FILE: certs.ca.certFile });
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port: node.port, ae_title: 'DEST', tls: true }],
    });
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey, JSON.stringify(outcome.body)).toBe('send.finished');
    expect(outcome.body.outcomes[0]).toMatchObject({ sent: t.series.length, failed: 0, attempts: 1 });
    expect(await receivedDigests(node.dir)).toEqual(await sentDigests(t.series));
  });

  it('presents SEND_TLS_CERT/SEND_TLS_KEY to a node that requires a client certificate; without one it fails', async () => {
    const certs = await makeTestCertificates();
    t.defer(() => certs.close());
    const node = await tlsStorescp(t, certs, 'mtls', 'required');
    const withCert = await t.world.startSender({
      SEND_TLS_CA_FILE: certs.ca.certFile,
      SEND_TLS_CERT: certs.client.certFile,
      SEND_TLS_KEY: certs.client.keyFile,
    });
    const sent = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port: node.port, ae_title: 'DEST', tls: true }],
    });
    const outcome = await t.world.waitForOutcome(sent.runId);
    expect(outcome.routingKey, JSON.stringify(outcome.body)).toBe('send.finished');
    expect(outcome.body.outcomes[0]).toMatchObject({ sent: t.series.length, failed: 0 });
    expect(await fileCount(node.dir)).toBe(t.series.length);
    await withCert.close();

    await t.world.startSender({ SEND_TLS_CA_FILE: certs.ca.certFile, SEND_MAX_ATTEMPTS: '1' });
    const refused = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port: node.port, ae_title: 'DEST', tls: true }],
    });
    const failed = await t.world.waitForOutcome(refused.runId);
    expect(failed.routingKey).toBe('send.failed');
    expect(failed.body.outcomes[0]).toMatchObject({ sent: 0, failed: t.series.length });
    expect(await fileCount(node.dir)).toBe(t.series.length);
  });

  it('fails at once, naming TLS, when the node certificate is not trusted (no retry fixes it)', async () => {
    const certs = await makeTestCertificates();
    t.defer(() => certs.close());
    const node = await tlsStorescp(t, certs, 'untrusted', 'none');
    await t.world.startSender({ SEND_TLS_CA_FILE: certs.otherCa.certFile, SEND_MAX_ATTEMPTS: '10' });
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port: node.port, ae_title: 'DEST', tls: true }],
    });
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    expect(outcome.body.outcomes[0]).toMatchObject({ sent: 0, failed: t.series.length, attempts: 1 });
    expect(outcome.body.outcomes[0]?.message).toMatch(/TLS: the node's certificate is not trusted/);
    expect(await fileCount(node.dir)).toBe(0);
  });

  it('stops the start, naming the file, when SEND_TLS_CERT is missing', async () => {
    await expect(
      t.world.startSender({
        SEND_TLS_CERT: '/nonexistent/client.pem',
        SEND_TLS_KEY: '/nonexistent/client.key',
      }),
    ).rejects.toThrow(/DICOM destinations TLS: cannot read the certificate file \/nonexistent\/client\.pem/);
  });
});

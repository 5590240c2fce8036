import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, type ConnectionOptions } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  generateCtSeries,
  makeTestCertificates,
  newUid,
  storescu,
  testEnvironment,
  type TestCertificates,
} from '@dicomflow/test-helpers';
import { loadConfig } from '@dicomflow/config';
import { createLogger } from '@dicomflow/runtime';
import { createService, type StorescpConfig } from './service.js';
import { startReceiver, type Receiver } from './testing/receiver-harness.js';

let work: string;
let certs: TestCertificates;
let files: string[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-tls-'));
  certs = await makeTestCertificates();
  files = await generateCtSeries(join(work, 'ct'), 3, { studyInstanceUid: newUid(), rows: 64, columns: 64 });
}, 60_000);

afterAll(async () => {
  await certs.close();
  await rm(work, { recursive: true, force: true });
});

/** dcmtk storescu over TLS: with our client certificate, or anonymous (+tla); trusting `ca`. */
function tlsArgs(ca: string, client?: { certFile: string; keyFile: string }): string[] {
  return [...(client ? ['+tls', client.keyFile, client.certFile] : ['+tla']), '+cf', ca];
}

function tlsPortOf(receiver: Receiver): number {
  const port = receiver.service.ports().dicomTls;
  if (port === undefined) throw new Error('no DICOM TLS listener');
  return port;
}

describe('DICOM TLS on the receiver (server certificate only)', () => {
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver({
      AE_TLS_PORT: String(await freePort()),
      AE_TLS_CERT: certs.server.certFile,
      AE_TLS_KEY: certs.server.keyFile,
    });
  }, 60_000);

  afterAll(async () => {
    await receiver.close();
  });

  it('stores instances sent by storescu +tls, and keeps the plain port open', async () => {
    const before = receiver.receipts.messages.length;
    const sent = await storescu({
      port: tlsPortOf(receiver),
      calledAe: 'STORESCP',
      files,
      extraArgs: tlsArgs(certs.ca.certFile, certs.client),
    });
    expect(sent.code, sent.stderr).toBe(0);
    const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
    expect(message?.instanceCount).toBe(3);

    const plain = await storescu({ port: receiver.port, calledAe: 'STORESCP', files });
    expect(plain.code).toBe(0);
    await receiver.receipts.waitFor(before + 2);
  });

  it('stores from an anonymous TLS caller when no client CA is configured', async () => {
    const before = receiver.receipts.messages.length;
    const sent = await storescu({
      port: tlsPortOf(receiver),
      calledAe: 'STORESCP',
      files,
      extraArgs: tlsArgs(certs.ca.certFile),
    });
    expect(sent.code, sent.stderr).toBe(0);
    expect((await receiver.receipts.waitFor(before + 1))[before]?.instanceCount).toBe(3);
  });

  it('fails a plain (non-TLS) storescu on the TLS port, storing nothing', async () => {
    const before = receiver.receipts.messages.length;
    const sent = await storescu({
      port: tlsPortOf(receiver),
      calledAe: 'STORESCP',
      files,
      timeoutMs: 60_000,
    });
    expect(sent.code).not.toBe(0);
    await expect(receiver.receipts.waitFor(before + 1, 1000)).rejects.toThrow();
  });

  it('speaks TLS 1.2+ with BCP 195 ciphers only: TLS 1.1 and a CBC suite are refused', async () => {
    const ca = await readFile(certs.ca.certFile);
    const handshake = (options: ConnectionOptions): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: tlsPortOf(receiver), ca, ...options }, () => {
          resolve(`${String(socket.getProtocol())} ${socket.getCipher().name}`);
          socket.destroy();
        });
        socket.once('error', reject);
      });
    expect(await handshake({ maxVersion: 'TLSv1.2' })).toMatch(
      /^TLSv1\.2 ECDHE-RSA-AES(128|256)-GCM-SHA(256|384)$/,
    );
    expect(await handshake({})).toMatch(/^TLSv1\.3 /);
    await expect(handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1' })).rejects.toThrow();
    await expect(handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA256' })).rejects.toThrow(
      /handshake failure|no shared cipher|alert/i,
    );
  });

  it('fails a TLS storescu that does not trust our certificate', async () => {
    const sent = await storescu({
      port: tlsPortOf(receiver),
      calledAe: 'STORESCP',
      files,
      extraArgs: tlsArgs(certs.otherCa.certFile),
    });
    expect(sent.code).not.toBe(0);
    expect(sent.stderr + sent.stdout).toMatch(/certificate|TLS/i);
  });
});

describe('DICOM TLS on the receiver with client certificates required', () => {
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver({
      AE_TLS_PORT: String(await freePort()),
      AE_TLS_CERT: certs.server.certFile,
      AE_TLS_KEY: certs.server.keyFile,
      AE_TLS_CA: certs.ca.certFile,
      AE_TLS_REQUIRE_CLIENT_CERT: 'true',
    });
  }, 60_000);

  afterAll(async () => {
    await receiver.close();
  });

  it('stores from a caller with a certificate of the CA', async () => {
    const before = receiver.receipts.messages.length;
    const sent = await storescu({
      port: tlsPortOf(receiver),
      calledAe: 'STORESCP',
      files,
      extraArgs: tlsArgs(certs.ca.certFile, certs.client),
    });
    expect(sent.code, sent.stderr).toBe(0);
    expect((await receiver.receipts.waitFor(before + 1))[before]?.instanceCount).toBe(3);
  });

  it('refuses a caller without a certificate, and one with a certificate of another CA', async () => {
    const before = receiver.receipts.messages.length;
    const anonymous = await storescu({
      port: tlsPortOf(receiver),
      calledAe: 'STORESCP',
      files,
      extraArgs: tlsArgs(certs.ca.certFile),
    });
    expect(anonymous.code).not.toBe(0);
    const stranger = await storescu({
      port: tlsPortOf(receiver),
      calledAe: 'STORESCP',
      files,
      extraArgs: tlsArgs(certs.ca.certFile, certs.strangerClient),
    });
    expect(stranger.code).not.toBe(0);
    await expect(receiver.receipts.waitFor(before + 1, 1000)).rejects.toThrow();
  });
});

describe('DICOM TLS with an optional client certificate (AE_TLS_CA without the requirement)', () => {
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver({
      AE_TLS_PORT: String(await freePort()),
      AE_TLS_CERT: certs.server.certFile,
      AE_TLS_KEY: certs.server.keyFile,
      AE_TLS_CA: certs.ca.certFile,
    });
  }, 60_000);

  afterAll(async () => {
    await receiver.close();
  });

  it('takes an anonymous caller but refuses a certificate that does not chain to the CA', async () => {
    const before = receiver.receipts.messages.length;
    const anonymous = await storescu({
      port: tlsPortOf(receiver),
      calledAe: 'STORESCP',
      files,
      extraArgs: tlsArgs(certs.ca.certFile),
    });
    expect(anonymous.code, anonymous.stderr).toBe(0);
    await receiver.receipts.waitFor(before + 1);
    const stranger = await storescu({
      port: tlsPortOf(receiver),
      calledAe: 'STORESCP',
      files,
      extraArgs: tlsArgs(certs.ca.certFile, certs.strangerClient),
    });
    expect(stranger.code).not.toBe(0);
    await expect(receiver.receipts.waitFor(before + 2, 1000)).rejects.toThrow();
  });
});

describe('DICOM TLS settings checked when the service is made', () => {
  const logger = createLogger({ service: 'storescp-tls-test', level: 'silent' });
  const configWith = (env: Record<string, string>): StorescpConfig =>
    loadConfig('storescp', { confDir: work, env: { ...testEnvironment(), AE_TLS_PORT: '11112', ...env } });

  it('refuses AE_TLS_PORT without a certificate, a requirement without a CA, and a missing file', () => {
    expect(() => createService(configWith({}), logger)).toThrow(/AE_TLS_CERT and AE_TLS_KEY/);
    expect(() =>
      createService(
        configWith({
          AE_TLS_CERT: certs.server.certFile,
          AE_TLS_KEY: certs.server.keyFile,
          AE_TLS_REQUIRE_CLIENT_CERT: 'true',
        }),
        logger,
      ),
    ).toThrow(/needs AE_TLS_CA/);
    expect(() =>
      createService(
        configWith({ AE_TLS_CERT: '/nonexistent.pem', AE_TLS_KEY: certs.server.keyFile }),
        logger,
      ),
    ).toThrow(/DICOM receiver TLS: cannot read the certificate file \/nonexistent\.pem/);
    expect(() =>
      createService(
        configWith({ AE_TLS_CERT: certs.server.keyFile, AE_TLS_KEY: certs.server.keyFile }),
        logger,
      ),
    ).toThrow(/is not a PEM certificate/);
  });
});

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorage, StorageError } from '@dicomflow/storage';
import { startMinio, type MinioProcess } from '@dicomflow/storage/testing';
import { makeTestCertificates, type TestCertificates } from './test-certificates.js';

// The S3 link over HTTPS (S3_USE_SSL + S3_CA) against a MinIO of the test's own serving a certificate of
// a private CA. Here rather than in packages/storage because the certificate maker lives in this package,
// which depends on storage.
describe('S3 over HTTPS to MinIO with a private CA', () => {
  let certs: TestCertificates;
  let minio: MinioProcess;

  beforeAll(async () => {
    certs = await makeTestCertificates();
    minio = await startMinio({ tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
  }, 120_000);

  afterAll(async () => {
    await minio.close();
    await certs.close();
  });

  it('puts and gets an object over HTTPS when trusting the CA (S3_CA)', async () => {
    expect(minio.config.useSSL).toBe(true);
    const storage = createStorage({ ...minio.config, ca: certs.ca.certFile });
    const bucket = `https-${randomBytes(4).toString('hex')}`;
    const body = randomBytes(256 * 1024);
    await storage.ensureBucket(bucket);
    await storage.putBuffer(bucket, 'object.bin', body);
    expect((await storage.getBuffer(bucket, 'object.bin')).equals(body)).toBe(true);
    expect((await storage.stat(bucket, 'object.bin'))?.size).toBe(body.length);
  });

  it('works by host name too ("localhost" is in the certificate)', async () => {
    const storage = createStorage({ ...minio.config, endPoint: 'localhost', ca: certs.ca.certFile });
    await storage.ensureBucket(`https-${randomBytes(4).toString('hex')}`);
  });

  it('refuses the server without the CA (the system does not trust it), with a certificate error', async () => {
    const storage = createStorage(minio.config);
    const failure = storage.ensureBucket(`https-${randomBytes(4).toString('hex')}`);
    await expect(failure).rejects.toBeInstanceOf(StorageError);
    await expect(failure).rejects.toThrow(/certificate/i);
  });

  it('refuses the server when trusting another CA', async () => {
    const storage = createStorage({ ...minio.config, ca: certs.otherCa.certFile });
    await expect(storage.ensureBucket(`https-${randomBytes(4).toString('hex')}`)).rejects.toThrow(
      /certificate/i,
    );
  });

  it('stops at once, naming the file, when S3_CA is missing', () => {
    let thrown: unknown;
    try {
      createStorage({ ...minio.config, ca: '/nonexistent/ca.pem' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ kind: 'permanent' });
    expect(String(thrown)).toMatch(/S3 TLS: cannot read the CA certificate file \/nonexistent\/ca\.pem/);
  });
});

import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PermanentError } from './errors.js';
import { readTlsFiles } from './tls-files.js';

const dir = mkdtempSync(join(tmpdir(), 'tls-files-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const keyFile = join(dir, 'key.pem');
writeFileSync(
  keyFile,
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
);
const notPem = join(dir, 'notes.txt');
writeFileSync(notPem, 'not a certificate\n');

function failure(read: () => unknown): Error {
  try {
    read();
  } catch (err) {
    expect(err).toBeInstanceOf(PermanentError);
    return err as Error;
  }
  throw new Error('expected a failure');
}

describe('readTlsFiles', () => {
  it('reads nothing when no path is given (empty paths count as none)', () => {
    expect(readTlsFiles({}, 'X')).toEqual({});
    expect(readTlsFiles({ ca: '', cert: '', key: '' }, 'X')).toEqual({});
  });

  it('names the link and the file it cannot read', () => {
    expect(failure(() => readTlsFiles({ ca: join(dir, 'missing.pem') }, 'RabbitMQ')).message).toMatch(
      /^RabbitMQ TLS: cannot read the CA certificate file .*missing\.pem: ENOENT/,
    );
  });

  it('refuses a file that is not a PEM certificate or key', () => {
    expect(failure(() => readTlsFiles({ ca: notPem }, 'S3')).message).toMatch(
      /^S3 TLS: the CA certificate file .*notes\.txt is not a PEM CA certificate/,
    );
    expect(failure(() => readTlsFiles({ ca: keyFile }, 'S3')).message).toMatch(/is not a PEM CA certificate/);
  });

  it('wants a certificate and its key together', () => {
    expect(failure(() => readTlsFiles({ key: keyFile }, 'PostgreSQL')).message).toMatch(/got a key only/);
    expect(failure(() => readTlsFiles({ cert: notPem }, 'PostgreSQL')).message).toMatch(
      /got a certificate only/,
    );
  });
});

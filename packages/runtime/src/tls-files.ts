import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PermanentError } from './errors.js';

/** Paths of the PEM files of one TLS link (as configured); an absent or empty path means "none". */
export interface TlsFiles {
  /** CA certificate(s) to trust instead of the system's. */
  readonly ca?: string;
  /** Our certificate (a client certificate, or a server's own). */
  readonly cert?: string;
  /** The private key of `cert`. */
  readonly key?: string;
}

/** The contents of {@link TlsFiles}, ready for `tls.connect` / `tls.createServer` / an https agent. */
export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

function readPem(link: string, what: string, path: string, check: (pem: Buffer) => void): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PermanentError(`${link} TLS: cannot read the ${what} file ${path}: ${reason}`);
  }
  try {
    check(pem);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PermanentError(`${link} TLS: the ${what} file ${path} is not a PEM ${what}: ${reason}`);
  }
  return pem;
}

const isCertificate = (pem: Buffer): void => {
  new X509Certificate(pem);
};
const isPrivateKey = (pem: Buffer): void => {
  createPrivateKey(pem);
};

/**
 * Reads and checks the PEM files of one TLS link once, at start-up, so that a wrong path or a file of
 * the wrong kind stops the service with a message naming the link and the file (instead of a handshake
 * failure on every reconnect). A certificate needs its key and a key its certificate. `link` names the
 * link in messages (e.g. "RabbitMQ"). Files are not watched: a renewed certificate takes a restart.
 */
export function readTlsFiles(files: TlsFiles, link: string): TlsMaterial {
  const ca = files.ca ?? '';
  const cert = files.cert ?? '';
  const key = files.key ?? '';
  if ((cert === '') !== (key === '')) {
    throw new PermanentError(
      `${link} TLS: a client certificate needs its key and a key its certificate (got ${cert === '' ? 'a key only' : 'a certificate only'})`,
    );
  }
  const material: TlsMaterial = {};
  if (ca !== '') material.ca = readPem(link, 'CA certificate', ca, isCertificate);
  if (cert !== '') material.cert = readPem(link, 'certificate', cert, isCertificate);
  if (key !== '') material.key = readPem(link, 'private key', key, isPrivateKey);
  return material;
}

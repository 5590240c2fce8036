import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChecked } from './run-command.js';

/** A PEM certificate and its private key, as files. */
export interface CertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** A certificate authority of a test's own: its certificate file and what it signs with. */
export interface TestCa extends CertificateFiles {
  readonly name: string;
}

/** What {@link makeTestCertificates} writes. */
export interface TestCertificates {
  /** The folder holding every file (removed by `close`). */
  readonly dir: string;
  /** The CA that signed `server` and `client`. */
  readonly ca: TestCa;
  /** A second, unrelated CA: trusting only it must make every handshake fail. */
  readonly otherCa: TestCa;
  /** For `localhost` and 127.0.0.1 (and ::1), usable as a TLS server certificate. */
  readonly server: CertificateFiles;
  /** A client certificate (CN `dicomflow-test-client`) signed by `ca`. */
  readonly client: CertificateFiles;
  /** A client certificate signed by `otherCa`: a server trusting `ca` must refuse it. */
  readonly strangerClient: CertificateFiles;
  /** Signs another certificate with `ca` (or the CA given). */
  issue(name: string, options?: IssueOptions): Promise<CertificateFiles>;
  close(): Promise<void>;
}

/** What a certificate is for and which names it covers. */
export interface IssueOptions {
  readonly ca?: TestCa;
  /** DNS names in subjectAltName (default: `localhost` for a server certificate). */
  readonly dnsNames?: readonly string[];
  /** IP addresses in subjectAltName (default: 127.0.0.1 and ::1 for a server certificate). */
  readonly ips?: readonly string[];
  /** `server` (default) or `client` extended key usage. */
  readonly usage?: 'server' | 'client';
}

const DAYS = '2';

function openssl(args: readonly string[]): Promise<unknown> {
  return runChecked('openssl', args, { timeoutMs: 60_000 });
}

/** Makes a self-signed CA (RSA 2048: every server here, Erlang's and dcmtk's included, takes it). */
async function makeCa(dir: string, name: string): Promise<TestCa> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    DAYS,
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { name, certFile, keyFile };
}

async function issueWith(
  dir: string,
  defaultCa: TestCa,
  name: string,
  options: IssueOptions = {},
): Promise<CertificateFiles> {
  const ca = options.ca ?? defaultCa;
  const usage = options.usage ?? 'server';
  const dnsNames = options.dnsNames ?? (usage === 'server' ? ['localhost'] : []);
  const ips = options.ips ?? (usage === 'server' ? ['127.0.0.1', '::1'] : []);
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  const altNames = [...dnsNames.map((n) => `DNS:${n}`), ...ips.map((ip) => `IP:${ip}`)];
  await writeFile(
    extFile,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      ...(altNames.length > 0 ? [`subjectAltName=${altNames.join(',')}`] : []),
      '',
    ].join('\n'),
  );
  await openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    csrFile,
    '-subj',
    `/CN=${name}`,
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csrFile,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-out',
    certFile,
    '-days',
    DAYS,
    '-sha256',
    '-extfile',
    extFile,
  ]);
  return { certFile, keyFile };
}

/**
 * Makes, with the openssl CLI, a CA, a server certificate for localhost/127.0.0.1 and a client
 * certificate signed by it, plus an unrelated CA and a client certificate of that one, in a fresh folder.
 * Keys are unencrypted PEM (PKCS#8), valid two days.
 */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'dicomflow-certs-'));
  const ca = await makeCa(dir, 'dicomflow-test-ca');
  const otherCa = await makeCa(dir, 'dicomflow-other-ca');
  const server = await issueWith(dir, ca, 'localhost');
  const client = await issueWith(dir, ca, 'dicomflow-test-client', { usage: 'client' });
  const strangerClient = await issueWith(dir, ca, 'dicomflow-stranger-client', {
    ca: otherCa,
    usage: 'client',
  });
  return {
    dir,
    ca,
    otherCa,
    server,
    client,
    strangerClient,
    issue: (name, options) => issueWith(dir, ca, name, options),
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

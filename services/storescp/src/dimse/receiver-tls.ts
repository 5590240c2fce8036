import type { TlsOptions } from 'node:tls';
import { PermanentError, readTlsFiles } from '@dicomflow/runtime';

/** The keys of the DICOM TLS listener (storescp's AE_TLS_*). */
export interface ReceiverTlsConfig {
  readonly AE_TLS_PORT: number;
  readonly AE_TLS_CERT: string;
  readonly AE_TLS_KEY: string;
  readonly AE_TLS_CA: string;
  readonly AE_TLS_REQUIRE_CLIENT_CERT: boolean;
}

/**
 * The cipher suites of the BCP 195 profile (RFC 9325 section 4.2, as DICOM PS3.15 B.9 refers to it):
 * forward secrecy and AEAD only. TLS 1.3's own suites all qualify. OpenSSL names.
 */
export const BCP195_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
].join(':');

/** Where and how the DICOM TLS listener listens. */
export interface ReceiverTls {
  readonly port: number;
  /** Options for `tls.createServer`. */
  readonly options: TlsOptions;
  /** Callers must present a certificate of the CA; else a certificate is asked for but optional. */
  readonly requireClientCert: boolean;
  /** A CA was given: callers are asked for a certificate, and one that does not chain to it is refused. */
  readonly verifiesClients: boolean;
}

/**
 * The DICOM TLS listener of `config`, or undefined when AE_TLS_PORT is 0 (off). Reads the PEM files now, so
 * a missing or wrong one, or a half-made setting, stops the service at start with a PermanentError naming
 * the key. TLS 1.2 and 1.3 only, BCP 195 ciphers only, the server's cipher order.
 */
export function receiverTlsFrom(config: ReceiverTlsConfig): ReceiverTls | undefined {
  if (config.AE_TLS_PORT === 0) return undefined;
  if (config.AE_TLS_CERT === '' || config.AE_TLS_KEY === '') {
    throw new PermanentError(
      'AE_TLS_PORT is set: AE_TLS_CERT and AE_TLS_KEY must name the PEM certificate and key',
    );
  }
  if (config.AE_TLS_REQUIRE_CLIENT_CERT && config.AE_TLS_CA === '') {
    throw new PermanentError(
      'AE_TLS_REQUIRE_CLIENT_CERT needs AE_TLS_CA (the CA client certificates must chain to)',
    );
  }
  const material = readTlsFiles(
    { cert: config.AE_TLS_CERT, key: config.AE_TLS_KEY, ca: config.AE_TLS_CA },
    'DICOM receiver',
  );
  const verifiesClients = material.ca !== undefined;
  return {
    port: config.AE_TLS_PORT,
    requireClientCert: config.AE_TLS_REQUIRE_CLIENT_CERT,
    verifiesClients,
    options: {
      ...material,
      minVersion: 'TLSv1.2',
      ciphers: BCP195_CIPHERS,
      honorCipherOrder: true,
      requestCert: verifiesClients,
      // Checked per connection instead when a certificate is optional (see DicomServer#acceptTls).
      rejectUnauthorized: config.AE_TLS_REQUIRE_CLIENT_CERT,
    },
  };
}

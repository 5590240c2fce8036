import { Type, type Static } from '@sinclair/typebox';

/**
 * An http(s) URL without user name or password: credentials in a URL end up in logs and messages, and
 * Node's HTTP client refuses them anyway (a bearer token goes in `token` or `token_file`).
 */
export const DICOMWEB_URL_PATTERN = '^[Hh][Tt][Tt][Pp][Ss]?://[^/@?#\\s]+([/?#][^\\s]*)?$';

/** A bearer token as RFC 6750 defines it (b64token): nothing that could break the Authorization header. */
export const BEARER_TOKEN_PATTERN = '^[A-Za-z0-9._~+/-]+=*$';

/** A file name (no folder): `token_file` names a file in the sender's `SENDER_TOKEN_DIR`. */
export const TOKEN_FILE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';

/** A DICOM node that receives the output of the last model through C-STORE. */
export const DimseDestination = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 255, description: 'Host name or IP address.' }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    ae_title: Type.String({ minLength: 1, maxLength: 16, description: 'Called AE title.' }),
    tls: Type.Optional(
      Type.Boolean({
        description:
          "Default false. Send over DICOM TLS (TLS 1.2+, the node's certificate verified against the sender's SEND_TLS_CA_FILE or the system CAs; client certificate SEND_TLS_CERT/SEND_TLS_KEY if set).",
      }),
    ),
  },
  { additionalProperties: false, description: 'A DICOM node (C-STORE SCP).' },
);
export type DimseDestination = Static<typeof DimseDestination>;

/** The DICOMweb base URL of a destination, as messages carry it. */
export const DicomWebUrl = Type.String({
  minLength: 1,
  maxLength: 2048,
  pattern: DICOMWEB_URL_PATTERN,
  patternErrorMessage:
    'must be an http:// or https:// URL without user name or password (put a bearer token in token or token_file)',
  description:
    'Base URL of the DICOMweb service (e.g. https://pacs.example/dicom-web); instances are POSTed to <url>/studies (STOW-RS).',
});

/** A DICOMweb server that receives the output of the last model through STOW-RS. */
export const DicomWebDestination = Type.Object(
  {
    url: DicomWebUrl,
    token: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 8192,
        pattern: BEARER_TOKEN_PATTERN,
        patternErrorMessage: 'must be a bearer token (letters, digits and - . _ ~ + /, then = padding)',
        description:
          'Bearer token sent as "Authorization: Bearer <token>". It travels with the run in messages and the tracker event log: prefer token_file.',
      }),
    ),
    token_file: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        pattern: TOKEN_FILE_PATTERN,
        patternErrorMessage:
          'must be a file name (letters, digits, . _ -), read from the folder SENDER_TOKEN_DIR of the sender',
        description:
          'Name of a file in the sender folder SENDER_TOKEN_DIR (default /run/secrets) holding the bearer token; read at every delivery.',
      }),
    ),
  },
  {
    additionalProperties: false,
    // Both would leave the reader guessing which one wins.
    not: { required: ['token', 'token_file'], errorMessage: 'give token or token_file, not both' },
    description: 'A DICOMweb server (STOW-RS).',
  },
);
export type DicomWebDestination = Static<typeof DicomWebDestination>;

/** Where the output of the last model goes: a DICOM node or a DICOMweb server. */
export const FlowDestination = Type.Union([DimseDestination, DicomWebDestination], {
  errorMessage:
    'must be a DICOM node (host, port, ae_title) or a DICOMweb server (url, optionally token or token_file), not both',
  description:
    'A DICOM node (host, port, ae_title) or a DICOMweb server (url, optional token or token_file).',
});
export type FlowDestination = Static<typeof FlowDestination>;

/** True for a DICOMweb destination (`url`), false for a DICOM node. */
export function isDicomWebDestination(destination: FlowDestination): destination is DicomWebDestination {
  return 'url' in destination;
}

/** A destination for people and logs: `AE@host:port` or the DICOMweb URL (never its token). */
export function destinationText(destination: FlowDestination): string {
  return isDicomWebDestination(destination)
    ? destination.url
    : `${destination.ae_title}@${destination.host}:${destination.port}`;
}

import { key } from './key-spec.js';
import { aeTitleRule, integer, text, type ItemRule } from './value-kinds.js';

/** A PostgreSQL identifier we create and quote ourselves: lower case, digits and underscores. */
const sqlIdentifierRule: ItemRule = {
  expects: 'a PostgreSQL name: a lower-case letter or _, then lower-case letters, digits or _ (at most 63)',
  accepts: (item) => /^[a-z_][a-z0-9_]{0,62}$/.test(item),
};

/** Results sender (C-STORE SCU). */
export const senderKeys = {
  SENDER_AE_TITLE: key(
    text(aeTitleRule),
    'DICOMFLOW',
    'Calling AE title the sender uses towards destinations.',
  ),
  SENDER_DB_SCHEMA: key(
    text(sqlIdentifierRule),
    'sender',
    'PostgreSQL schema holding which instances each destination acknowledged (created at start if missing).',
  ),
  SENDER_SPOOL_DIR: key(
    text(),
    '/var/lib/dicomflow/sender',
    'Local folder where a run output tar is unpacked while it is being sent (removed afterwards).',
  ),
  SEND_MAX_ATTEMPTS: key(
    integer(1, 1000),
    10,
    'Associations tried per destination before it counts as failed (transient failures only; a permanent rejection is not retried).',
  ),
  SEND_RETRY_INITIAL_MS: key(
    integer(1),
    2000,
    'Delay before the second attempt to a destination; it doubles per attempt (with jitter) up to SEND_RETRY_MAX_MS.',
  ),
  SEND_RETRY_MAX_MS: key(integer(1), 60_000, 'Longest delay between two attempts to a destination.'),
  SEND_TIMEOUT_MS: key(
    integer(100),
    60_000,
    'How long to wait for a connection, an association answer, a C-STORE response or a STOW-RS answer (no traffic either way) before the attempt counts as failed.',
  ),
  SENDER_TOKEN_DIR: key(
    text(),
    '/run/secrets',
    'Folder of the bearer token files that DICOMweb destinations name with token_file (compose puts its secrets here).',
  ),
  SEND_TLS_CA_FILE: key(
    text(),
    '',
    'PEM file of CA certificates trusted for https:// DICOMweb destinations besides the default ones (empty: none), and for DICOM nodes with tls: true instead of the default ones.',
  ),
  SEND_TLS_CERT: key(
    text(),
    '',
    "PEM client certificate the sender presents to DICOM nodes with tls: true that ask for one ('' = none; needs SEND_TLS_KEY).",
  ),
  SEND_TLS_KEY: key(text(), '', "PEM private key of SEND_TLS_CERT ('' = none)."),
  SEND_STOW_BATCH_INSTANCES: key(
    integer(1, 10_000),
    100,
    'Most instances in one STOW-RS request to a DICOMweb destination (each request takes the instances downloaded by then).',
  ),
  SEND_STOW_BATCH_BYTES: key(
    integer(1),
    64 * 1024 * 1024,
    'Most file bytes in one STOW-RS request (a larger instance goes alone); bounds what the server holds and what a retry sends again.',
  ),
};

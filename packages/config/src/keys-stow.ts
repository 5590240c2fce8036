import { key } from './key-spec.js';
import { aeTitleRule, integer, port, text } from './value-kinds.js';

/** DICOMweb STOW-RS receiver of storescp (its own HTTP port; same spool and grouping as C-STORE). */
export const stowKeys = {
  STOW_PORT: key(
    port,
    8082,
    'Port of the DICOMweb STOW-RS receiver (POST /studies, POST /studies/{StudyInstanceUID}); it listens only when STOW_TOKEN is set.',
  ),
  STOW_HOST: key(text(), '0.0.0.0', 'Address the STOW-RS receiver binds to.'),
  STOW_TOKEN: key(
    text(),
    '',
    'Bearer token STOW-RS clients must send ("Authorization: Bearer <token>"); empty = STOW-RS off (nothing listens on STOW_PORT).',
    { sensitive: true },
  ),
  STOW_MAX_REQUEST_BYTES: key(
    integer(1),
    10 * 1024 * 1024 * 1024,
    'Largest STOW-RS request body, in bytes; a larger one is refused with 413 (instances of it received whole before the limit are kept, as an aborted association keeps what it received).',
  ),
  STOW_MAX_INSTANCE_BYTES: key(
    integer(1),
    4 * 1024 * 1024 * 1024,
    'Largest single instance in a STOW-RS request, in bytes; a larger one fails (FailureReason A700) and the others of the request are still stored.',
  ),
  STOW_CALLING_AE_TITLE: key(
    text(aeTitleRule),
    'STOW-RS',
    'AE title recorded as the sender of instances received over STOW-RS (the calling AE title of their receipt; the AE title results are sent to with return_to_sender_on_ports).',
  ),
};

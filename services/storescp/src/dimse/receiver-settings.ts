import type { ConfigOf } from '@dicomflow/config';
import { AssociationPolicy } from './association-policy.js';
import type { StoreScpContext } from './store-scp.js';

/*
 * What the DICOM receiver takes from the configuration, in one place: the service process builds its
 * receiver from it, and so does each receiver worker process (RECEIVER_WORKERS > 1).
 */

type ReceiverConfig = ConfigOf<'storescp'>;

/** The association policy of the AE_* and *_HOSTS / *_AE_TITLES keys. */
export function associationPolicyFrom(config: ReceiverConfig): AssociationPolicy {
  return new AssociationPolicy({
    aeTitle: config.AE_TITLE,
    checkCalledAeTitle: config.CHECK_CALLED_AE_TITLE,
    allowedCallingAeTitles: config.ALLOWED_CALLING_AE_TITLES,
    deniedCallingAeTitles: config.DENIED_CALLING_AE_TITLES,
    allowedHosts: config.ALLOWED_HOSTS,
    deniedHosts: config.DENIED_HOSTS,
    acceptUnknownSopClasses: config.ACCEPT_UNKNOWN_SOP_CLASSES,
    maxAssociations: config.MAX_ASSOCIATIONS,
  });
}

/** The per-association limits and timeouts of the configuration. */
export function dicomSettingsFrom(
  config: ReceiverConfig,
): Pick<StoreScpContext, 'fsync' | 'maxInstanceBytes' | 'maxPduLength' | 'dimseOptions'> {
  const idleMs = config.ASSOCIATION_IDLE_TIMEOUT * 1000;
  return {
    fsync: config.SPOOL_FSYNC,
    maxInstanceBytes: config.MAX_INSTANCE_BYTES,
    maxPduLength: config.MAX_PDU,
    dimseOptions: { associationTimeout: idleMs, pduTimeout: idleMs, connectTimeout: idleMs },
  };
}

import type { ConfigOf } from '@dicomflow/config';
import type { Logger } from '@dicomflow/runtime';
import type { Registry } from 'prom-client';
import { DicomServer } from '../dimse/dicom-server.js';
import { receiverTlsFrom } from '../dimse/receiver-tls.js';
import { dicomSettingsFrom } from '../dimse/receiver-settings.js';
import type { StoreScpContext } from '../dimse/store-scp.js';
import type { Grouper } from '../spool/grouper.js';
import type { WorkerPorts } from './protocol.js';
import { ReceiverWorkers } from './receiver-workers.js';

/** The service's DICOM side, in this process or in worker processes alike. */
export interface DicomReceiver {
  /** Listens on AE_PORT (and AE_TLS_PORT); resolves with the bound ports. */
  listen(): Promise<WorkerPorts>;
  /** Connections open now (all workers together). */
  openConnections(): number;
  /** Stops accepting, drains open associations for up to `drainMs`, then cuts them. */
  close(drainMs: number): Promise<void>;
  /** What `/metrics` serves, given the service's registry. */
  metricsRegistry(own: Registry): Registry;
  /** Extra `/readyz` details. */
  details(): Record<string, unknown>;
}

/** What the receiver shares with the rest of the service. */
export interface DicomReceiverParts extends Pick<StoreScpContext, 'policy' | 'spool' | 'metrics'> {
  readonly grouper: Grouper;
  /** The service's registry (the worker pool adds its counters). */
  readonly registry: Registry;
}

/**
 * The DICOM receiver of `config`: with RECEIVER_WORKERS 1 a {@link DicomServer} in this process, as
 * always; with more, {@link ReceiverWorkers}. Reads the AE_TLS_* files now, so a bad one fails here.
 */
export function createDicomReceiver(
  config: ConfigOf<'storescp'>,
  parts: DicomReceiverParts,
  logger: Logger,
): DicomReceiver {
  const tls = receiverTlsFrom(config);
  if (config.RECEIVER_WORKERS > 1) {
    const workers = new ReceiverWorkers({
      config,
      count: config.RECEIVER_WORKERS,
      grouper: parts.grouper,
      registry: parts.registry,
      logger,
    });
    return {
      listen: () => workers.listen(),
      openConnections: () => workers.openConnections(),
      close: (drainMs) => workers.close(drainMs),
      metricsRegistry: (own) => workers.metricsRegistry(own),
      details: () => workers.details(),
    };
  }
  const server = new DicomServer(
    {
      policy: parts.policy,
      spool: parts.spool,
      grouper: parts.grouper,
      metrics: parts.metrics,
      logger: logger.child({ component: 'scp' }),
      ...dicomSettingsFrom(config),
    },
    logger,
  );
  return {
    async listen() {
      const dicom = await server.listen(config.AE_PORT, config.AE_HOSTNAME);
      const dicomTls = tls && (await server.listenTls(tls, config.AE_HOSTNAME));
      return { dicom, ...(dicomTls ? { dicomTls } : {}) };
    },
    openConnections: () => server.openConnections(),
    close: (drainMs) => server.close(drainMs),
    metricsRegistry: (own) => own,
    details: () => ({}),
  };
}

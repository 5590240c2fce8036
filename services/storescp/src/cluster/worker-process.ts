import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigOf } from '@dicomflow/config';
import {
  createLogger,
  createMetricsRegistry,
  startProcessBufferReclaimer,
  startTracing,
  type Logger,
  type Tracing,
} from '@dicomflow/runtime';
import { DicomServer } from '../dimse/dicom-server.js';
import { Implementation, dimseLog } from '../dimse/dimse.js';
import { receiverTlsFrom } from '../dimse/receiver-tls.js';
import { associationPolicyFrom, dicomSettingsFrom } from '../dimse/receiver-settings.js';
import type { StoreScpContext } from '../dimse/store-scp.js';
import { createReceiverMetrics } from '../metrics.js';
import { Spool } from '../spool/spool.js';
import { CHANNEL, isToWorker, type FromWorker, type WorkerPorts } from './protocol.js';
import { RemoteFiler } from './remote-filer.js';

/**
 * After its associations ended, how long a closing worker waits for the primary's last answers (within
 * the margin the primary gives it before killing it; what is left then, the primary seals anyway).
 */
const IDLE_WAIT_MS = 4_000;

/** A running worker: its DICOM listeners and its link to the primary. */
interface Running {
  readonly dicom: DicomServer;
  readonly filer: RemoteFiler;
  readonly registry: ReturnType<typeof createMetricsRegistry>;
  readonly logger: Logger;
  readonly tracing: Tracing;
}

function send(message: FromWorker, done: (err: Error | null) => void = () => undefined): void {
  if (!process.send || !process.connected) {
    done(new Error('no channel to the service process'));
    return;
  }
  process.send(message, undefined, {}, done);
}

/**
 * New instance files of a worker, in the spool's incoming/ folder. Unlike the {@link Spool} itself it
 * keeps no record of them: the primary files them (it moves them into their group), and a file left by a
 * worker that died is a leftover for the janitor.
 */
function incomingFiles(spool: Spool): StoreScpContext['spool'] {
  return {
    readOptions: spool.readOptions,
    newIncomingPath: () => join(spool.incomingDir, `${randomUUID()}.part`),
    discard: (path) => rm(path, { force: true }),
  };
}

/** The worker's receiver, built as the service builds its own, but filing through the primary. */
async function build(config: ConfigOf<'storescp'>, slot: number, elsewhere: () => number): Promise<Running> {
  const logger = createLogger({ service: 'storescp', level: config.LOG_LEVEL }).child({
    worker: slot,
    pid: process.pid,
  });
  const tracing = await startTracing('storescp', logger);
  dimseLog.setLevel('silent');
  Implementation.setMaxPduLength(config.MAX_PDU);
  const registry = createMetricsRegistry('storescp');
  const filer = new RemoteFiler(send);
  const spool = new Spool(config.SPOOL_DIR, config.SPOOL_FSYNC, {
    maxValueBytes: config.INDEX_MAX_VALUE_BYTES,
  });
  const dicom = new DicomServer(
    {
      policy: associationPolicyFrom(config),
      spool: incomingFiles(spool),
      grouper: filer,
      metrics: createReceiverMetrics(registry),
      logger: logger.child({ component: 'scp' }),
      associationsElsewhere: elsewhere,
      ...dicomSettingsFrom(config),
    },
    logger,
    (open) => {
      send({ channel: CHANNEL, kind: 'connections', open });
    },
  );
  return { dicom, filer, registry, logger, tracing };
}

async function listen(dicom: DicomServer, config: ConfigOf<'storescp'>, ports: WorkerPorts): Promise<void> {
  await dicom.listen(ports.dicom, config.AE_HOSTNAME);
  const tls = receiverTlsFrom(config);
  if (tls) await dicom.listenTls(tls, config.AE_HOSTNAME);
}

/**
 * Runs this process as a receiver worker (RECEIVER_WORKERS > 1): waits for its configuration from the
 * primary, listens on the shared DICOM port(s) and serves the associations the cluster hands it, filing
 * every instance through the primary. Signals are left to the primary, which drains its workers when it
 * closes; a worker whose primary is gone exits (node:cluster does so on the channel's end).
 */
export function runReceiverWorker(): void {
  let running: Running | undefined;
  let elsewhere = 0;
  let initialised = false;
  let closing = false;
  const ignoreSignal = (): void => undefined;
  process.on('SIGINT', ignoreSignal);
  process.on('SIGTERM', ignoreSignal);
  process.on('disconnect', () => running?.filer.disconnected());

  const close = async (drainMs: number): Promise<void> => {
    if (closing) return;
    closing = true;
    if (!running) process.exit(0); // nothing was received yet
    const { dicom, filer, tracing, logger } = running;
    await dicom.close(drainMs);
    await filer.idle(IDLE_WAIT_MS);
    await tracing.close();
    logger.debug('receiver worker stopped');
    process.exit(0);
  };

  process.on('message', (message: unknown) => {
    if (!isToWorker(message)) return;
    switch (message.kind) {
      case 'init': {
        if (initialised) return;
        initialised = true;
        const { config, ports, slot } = message;
        build(config, slot, () => elsewhere)
          .then(async (built) => {
            running = built;
            await listen(built.dicom, config, ports);
            built.logger.debug({ pid: process.pid }, 'receiver worker ready');
            send({ channel: CHANNEL, kind: 'ready' });
            startProcessBufferReclaimer();
          })
          .catch((err: unknown) => {
            running?.logger.error({ err }, 'receiver worker could not start');
            const reason = err instanceof Error ? err.message : String(err);
            send({ channel: CHANNEL, kind: 'failed', message: reason }, () => process.exit(1));
          });
        return;
      }
      case 'answer':
        running?.filer.answered(message.id, message.error);
        return;
      case 'elsewhere':
        elsewhere = message.open;
        return;
      case 'metrics':
        void running?.registry.getMetricsAsJSON().then((metrics) => {
          send({ channel: CHANNEL, kind: 'metrics', id: message.id, metrics });
        });
        return;
      case 'close':
        void close(message.drainMs);
        return;
    }
  });
  send({ channel: CHANNEL, kind: 'started' });
}

import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '@dicomflow/runtime';
import type { InstanceFiler } from '../dimse/instance-filing.js';
import {
  CHANNEL,
  decodeOrigin,
  encodeError,
  isFromWorker,
  type FromWorker,
  type ToWorker,
  type WireError,
} from './protocol.js';

/** After a worker was told to close, how much longer than its drain it gets before it is killed. */
const CLOSE_MARGIN_MS = 5_000;
/** A worker that does not send its metrics within this is left out of that scrape. */
const METRICS_TIMEOUT_MS = 2_000;

/** A receiver worker that could not start (its listener could not bind, a TLS file is bad, ...). */
export class ReceiverWorkerStartError extends Error {
  override readonly name = 'ReceiverWorkerStartError';
}

/** What a link needs from its pool. */
export interface WorkerLinkDeps {
  /** 1..RECEIVER_WORKERS; a replacement takes the slot of the worker it replaces. */
  readonly slot: number;
  readonly init: Omit<Extract<ToWorker, { kind: 'init' }>, 'channel' | 'kind' | 'slot'>;
  /** Where the worker's instances are filed: the service's one grouper. */
  readonly grouper: InstanceFiler;
  readonly logger: Logger;
  /** The worker's open-connection count changed (`opened`: by how many it grew, else 0). */
  readonly onConnections: (opened: number) => void;
}

/** How a worker process ended. */
export interface WorkerExit {
  readonly code: number | null;
  readonly signal: string | null;
  /** Whether it had said it was ready (listening). */
  readonly wasReady: boolean;
}

/**
 * The primary's side of one receiver worker process: forks it, answers its requests by filing into the
 * grouper (the answer is what lets the worker acknowledge a C-STORE), and tracks what it holds. When the
 * worker dies, the groups of its associations that received instances are handed over as if the
 * associations had ended (their senders saw the connection drop), so nothing acknowledged is left behind.
 */
export class WorkerLink {
  readonly worker: Worker;
  /** Connections open in the worker, as it last said. */
  open = 0;
  /** Resolves once the worker listens; rejects if it cannot. */
  readonly ready: Promise<void>;
  /** Resolves once the worker is gone and its requests and left-over associations are dealt with. */
  readonly gone: Promise<WorkerExit>;
  private wasReady = false;
  /** Associations that filed instances and whose end the worker has not told. */
  private readonly associations = new Set<string>();
  private readonly work = new Set<Promise<void>>();
  private readonly metricsWaiters = new Map<number, (metrics: object[] | undefined) => void>();
  private nextMetricsId = 1;
  private readonly log: Logger;

  constructor(private readonly deps: WorkerLinkDeps) {
    this.worker = cluster.fork();
    const pid = this.worker.process.pid;
    this.log = deps.logger.child({ worker: deps.slot, pid });
    let readyResolve: () => void = () => undefined;
    let readyReject: (err: Error) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      readyResolve = resolve;
      readyReject = reject;
    });
    this.ready.catch(() => undefined);
    this.worker.on('message', (message: unknown) => {
      if (!isFromWorker(message)) return;
      // Sent once the worker listens for messages: one sent before could be lost while it loads.
      if (message.kind === 'started') {
        this.send({ channel: CHANNEL, kind: 'init', slot: deps.slot, ...deps.init });
      } else if (message.kind === 'ready') {
        this.wasReady = true;
        readyResolve();
      } else if (message.kind === 'failed') {
        readyReject(new ReceiverWorkerStartError(message.message));
      } else {
        this.take(message);
      }
    });
    this.worker.on('error', (err) => {
      this.log.warn({ err: err.message }, 'receiver worker channel error');
    });
    // Messages still in the channel are delivered before 'disconnect'; only then is the worker's state final.
    const disconnected = new Promise<void>((resolve) => this.worker.once('disconnect', resolve));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      this.worker.once('exit', (code: number | null, signal: string | null) => {
        resolve({ code, signal });
      });
    });
    this.gone = Promise.all([exited, disconnected]).then(async ([exit]) => {
      readyReject(new ReceiverWorkerStartError(`worker exited (code ${exit.code}, signal ${exit.signal})`));
      this.open = 0;
      for (const resolve of this.metricsWaiters.values()) resolve(undefined);
      this.metricsWaiters.clear();
      this.endLeftOverAssociations();
      await Promise.allSettled([...this.work]);
      return { ...exit, wasReady: this.wasReady };
    });
  }

  /** The worker's process id. */
  get pid(): number | undefined {
    return this.worker.process.pid;
  }

  /** Tells the worker how many associations the other workers hold. */
  tellElsewhere(open: number): void {
    this.send({ channel: CHANNEL, kind: 'elsewhere', open });
  }

  /** The worker's metrics (prom-client JSON), or undefined if it does not answer in time. */
  metrics(): Promise<object[] | undefined> {
    if (!this.worker.isConnected()) return Promise.resolve(undefined);
    const id = this.nextMetricsId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.metricsWaiters.delete(id);
        resolve(undefined);
      }, METRICS_TIMEOUT_MS);
      this.metricsWaiters.set(id, (metrics) => {
        clearTimeout(timer);
        resolve(metrics);
      });
      this.send({ channel: CHANNEL, kind: 'metrics', id });
    });
  }

  /** Lets the worker drain its associations for up to `drainMs`, then waits until it is gone (killed if it lingers). */
  async close(drainMs: number): Promise<WorkerExit> {
    if (!this.wasReady) {
      // Not listening yet, so holding nothing; it may not even hear a message yet.
      this.kill();
      return this.gone;
    }
    this.send({ channel: CHANNEL, kind: 'close', drainMs });
    const timer = setTimeout(() => {
      this.log.warn({ drainMs }, 'receiver worker did not stop in time; killing it');
      this.kill();
    }, drainMs + CLOSE_MARGIN_MS);
    try {
      return await this.gone;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the worker at once (its open associations drop). */
  kill(): void {
    if (!this.worker.isDead()) this.worker.process.kill('SIGKILL');
  }

  private take(message: FromWorker): void {
    switch (message.kind) {
      case 'admit': {
        const { id, origin, info, path } = message;
        this.associations.add(origin.associationId);
        this.track(this.deps.grouper.admit(decodeOrigin(origin), info, path), id);
        return;
      }
      case 'end-association':
        this.associations.delete(message.associationId);
        this.track(this.deps.grouper.endAssociation(message.associationId), message.id);
        return;
      case 'connections': {
        const opened = Math.max(0, message.open - this.open);
        this.open = message.open;
        this.deps.onConnections(opened);
        return;
      }
      case 'metrics':
        this.metricsWaiters.get(message.id)?.(message.metrics);
        this.metricsWaiters.delete(message.id);
        return;
      case 'started':
      case 'ready':
      case 'failed':
        return; // handled where the link is made
    }
  }

  /** Runs a request for the worker and answers it with its outcome. */
  private track(request: Promise<void>, id: number): void {
    const work = request.then(
      () => {
        this.answer(id);
      },
      (err: unknown) => {
        this.answer(id, encodeError(err));
      },
    );
    this.work.add(work);
    void work.finally(() => this.work.delete(work));
  }

  private answer(id: number, error?: WireError): void {
    this.send({ channel: CHANNEL, kind: 'answer', id, ...(error ? { error } : {}) });
  }

  /** A dead worker's associations ended with it: their groups complete as on any dropped connection. */
  private endLeftOverAssociations(): void {
    const left = [...this.associations];
    this.associations.clear();
    if (left.length > 0) this.log.warn({ associations: left.length }, 'associations lost with their worker');
    for (const associationId of left) {
      const work = this.deps.grouper.endAssociation(associationId).catch((err: unknown) => {
        this.log.error({ err }, 'sealing the group of a lost association failed; the spool keeps it');
      });
      this.work.add(work);
      void work.finally(() => this.work.delete(work));
    }
  }

  private send(message: ToWorker): void {
    if (!this.worker.isConnected()) return; // gone: what it asked for is filed, the answer has no reader
    this.worker.send(message, undefined, undefined, () => undefined);
  }
}

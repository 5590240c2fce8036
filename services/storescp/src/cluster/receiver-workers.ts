import cluster from 'node:cluster';
import { access } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { ConfigOf } from '@dicomflow/config';
import { computeBackoff, type Logger } from '@dicomflow/runtime';
import { Counter, type Registry } from 'prom-client';
import type { InstanceFiler } from '../dimse/instance-filing.js';
import type { WorkerPorts } from './protocol.js';
import { workerEntryPath, workerExecArgv } from './worker-entry.js';
import { ReceiverWorkerStartError, WorkerLink, type WorkerExit } from './worker-link.js';
import { WorkersMetricsRegistry } from './workers-metrics.js';

/** Backoff between replacements of a worker that keeps dying before it is ready. */
const RESTART_BACKOFF = { initialMs: 500, maxMs: 30_000 };

/** What the pool is built from. */
export interface ReceiverWorkersOptions {
  readonly config: ConfigOf<'storescp'>;
  /** How many worker processes (RECEIVER_WORKERS, at least 2). */
  readonly count: number;
  /** The service's grouper: every worker files its instances there. */
  readonly grouper: InstanceFiler;
  /** The service's registry: the pool's own counters go there. */
  readonly registry: Registry;
  readonly logger: Logger;
}

/** A TCP port on `host` that was free a moment ago (every worker must listen on the same one). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/**
 * The DICOM receiver as `count` worker processes (node:cluster) on the same port(s): the cluster hands
 * each new connection to a worker in turn, and the worker serves the whole association. Workers write
 * instance files into the spool and file them through this process's one grouper ({@link WorkerLink}), so
 * grouping, publishing and the spool index stay in one place. A worker that dies is replaced.
 */
export class ReceiverWorkers {
  private readonly links = new Map<number, WorkerLink>();
  /** Consecutive deaths of each slot's worker before it was ready. */
  private readonly failures = new Map<number, number>();
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private readonly told = new Map<WorkerLink, number>();
  private started = false;
  private closing: Promise<void> | undefined;
  private readonly connections: Counter<'worker'>;
  private readonly restarts: Counter;
  private readonly log: Logger;

  constructor(private readonly options: ReceiverWorkersOptions) {
    this.log = options.logger.child({ component: 'receiver-workers' });
    const registers = [options.registry];
    this.connections = new Counter({
      name: 'dicomflow_storescp_worker_connections_total',
      help: 'DICOM connections served, by receiver worker slot (RECEIVER_WORKERS > 1)',
      labelNames: ['worker'],
      registers,
    });
    this.restarts = new Counter({
      name: 'dicomflow_storescp_worker_restarts_total',
      help: 'Receiver workers that died and were replaced',
      registers,
    });
  }

  /**
   * Forks the workers and resolves with the DICOM port(s) once every one listens. AE_PORT 0 is resolved
   * to a free port here first: workers share a listener only when they ask for the same port.
   */
  async listen(): Promise<WorkerPorts> {
    const { config } = this.options;
    const entry = workerEntryPath();
    try {
      await access(entry);
    } catch {
      throw new ReceiverWorkerStartError(`the receiver worker is not built (${entry}): run npm run build`);
    }
    const ports: WorkerPorts = {
      dicom: config.AE_PORT === 0 ? await freePort(config.AE_HOSTNAME) : config.AE_PORT,
      ...(config.AE_TLS_PORT === 0 ? {} : { dicomTls: config.AE_TLS_PORT }),
    };
    for (let slot = 1; slot <= this.options.count; slot++) this.fork(slot, ports);
    const links = [...this.links.values()];
    try {
      await Promise.all(links.map((link) => link.ready));
    } catch (err) {
      // Nothing was received yet: no drain, and no replacement.
      for (const link of links) link.kill();
      this.closing = Promise.all(links.map((link) => link.gone)).then(() => undefined);
      await this.closing;
      throw err;
    }
    this.started = true;
    this.log.info({ workers: this.options.count, ...ports }, 'receiver workers ready');
    return ports;
  }

  /** Connections open in all workers, as they last said. */
  openConnections(): number {
    let open = 0;
    for (const link of this.links.values()) open += link.open;
    return open;
  }

  /** For `/readyz`: each worker's slot, process and open connections. */
  details(): Record<string, unknown> {
    return {
      receiverWorkers: [...this.links.entries()].map(([slot, link]) => ({
        slot,
        pid: link.pid,
        openAssociations: link.open,
      })),
    };
  }

  /** `/metrics` with every worker's metrics merged into `own`'s. */
  metricsRegistry(own: Registry): Registry {
    return new WorkersMetricsRegistry(own, () =>
      Promise.all([...this.links.values()].map((link) => link.metrics())),
    );
  }

  /**
   * Stops replacing workers, lets every worker drain its associations for up to `drainMs` (then cuts
   * them), and resolves once all are gone and what they received is filed. Idempotent.
   */
  close(drainMs: number): Promise<void> {
    this.closing ??= (async () => {
      for (const timer of this.restartTimers) clearTimeout(timer);
      this.restartTimers.clear();
      await Promise.all([...this.links.values()].map((link) => link.close(drainMs)));
      this.links.clear();
    })();
    return this.closing;
  }

  private fork(slot: number, ports: WorkerPorts): void {
    cluster.setupPrimary({
      exec: workerEntryPath(),
      execArgv: workerExecArgv(process.execArgv),
      args: [],
      silent: false,
    });
    const { config } = this.options;
    const link = new WorkerLink({
      slot,
      init: { config: { ...config, AE_PORT: ports.dicom }, ports },
      grouper: this.options.grouper,
      logger: this.log,
      onConnections: (opened) => {
        if (opened > 0) this.connections.inc({ worker: String(slot) }, opened);
        this.tellElsewhere();
      },
    });
    this.links.set(slot, link);
    void link.ready.then(() => this.failures.set(slot, 0));
    void link.gone.then((exit) => {
      this.gone(slot, ports, link, exit);
    });
  }

  /** A worker ended: outside close(), another takes its slot (later, if they keep dying early). */
  private gone(slot: number, ports: WorkerPorts, link: WorkerLink, exit: WorkerExit): void {
    this.told.delete(link);
    if (this.links.get(slot) === link) this.links.delete(slot);
    this.tellElsewhere();
    if (this.closing || !this.started) return;
    const failures = exit.wasReady ? 0 : (this.failures.get(slot) ?? 0) + 1;
    this.failures.set(slot, failures);
    const delayMs = failures === 0 ? 0 : computeBackoff(failures, RESTART_BACKOFF);
    this.log.warn(
      { worker: slot, pid: link.pid, code: exit.code, signal: exit.signal, delayMs },
      'receiver worker exited; starting another',
    );
    this.restarts.inc();
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.closing) this.fork(slot, ports);
    }, delayMs);
    this.restartTimers.add(timer);
  }

  /** Tells each worker how many associations the others hold, when that changed. */
  private tellElsewhere(): void {
    const total = this.openConnections();
    for (const link of this.links.values()) {
      const elsewhere = total - link.open;
      if (this.told.get(link) === elsewhere) continue;
      this.told.set(link, elsewhere);
      link.tellElsewhere(elsewhere);
    }
  }
}

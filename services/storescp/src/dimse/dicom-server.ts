import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '@dicomflow/runtime';
import { StoreScp, type StoreScpContext } from './store-scp.js';

/**
 * TCP connections accepted at once: MAX_ASSOCIATIONS plus this share of it (at least 8), so that senders
 * beyond the limit still hear an A-ASSOCIATE-RJ (temporary congestion) instead of a dropped connection,
 * while connections that never associate cannot pile up without bound.
 */
export function connectionLimit(maxAssociations: number): number {
  return maxAssociations + Math.max(8, Math.ceil(maxAssociations / 4));
}

/**
 * The DICOM listener. The library's own server neither binds to a chosen address nor lets us set socket
 * options before the first byte, so connections are accepted here and handed to {@link StoreScp}.
 */
export class DicomServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly ctx: Omit<StoreScpContext, 'openAssociations'>,
    private readonly logger: Logger,
  ) {}

  /** Listens on host:port (port 0 picks a free one); resolves with the bound port. */
  async listen(port: number, host: string): Promise<number> {
    const server = createServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      this.ctx.metrics.associationsOpen.set(this.sockets.size);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.ctx.metrics.associationsOpen.set(this.sockets.size);
      });
      socket.on('error', () => undefined); // the association reports it
      // Counted when asked: the receiver writes inline only while it serves one association alone.
      new StoreScp(socket, { ...this.ctx, openAssociations: () => Math.max(0, this.sockets.size - 1) });
    });
    server.maxConnections = connectionLimit(this.ctx.policy.maxAssociations);
    server.on('drop', (dropped) => {
      this.logger.warn(
        { remote: dropped?.remoteAddress, maxConnections: server.maxConnections },
        'connection dropped: too many open connections',
      );
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const bound = typeof address === 'object' && address ? address.port : port;
    this.logger.info({ host, port: bound }, 'DICOM listener ready');
    return bound;
  }

  /** Connections open now. */
  openConnections(): number {
    return this.sockets.size;
  }

  /** Stops accepting, then waits up to `drainMs` for open associations to end before cutting them. */
  async close(drainMs: number): Promise<void> {
    const server = this.server;
    this.server = undefined;
    // 'close' fires only once every connection is gone, so wait for it after the drain.
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const deadline = Date.now() + drainMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

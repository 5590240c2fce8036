import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '@dicomflow/runtime';
import type { ReceiverTls } from './receiver-tls.js';
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
 * The DICOM listeners (plain, and DICOM TLS when configured). The library's own server neither binds to a
 * chosen address nor lets us set socket options before the first byte, so connections are accepted here
 * and handed to {@link StoreScp}. Both listeners share the open-connection count.
 */
export class DicomServer {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();

  /** `onConnections`: told the open-connection count each time it changes (a receiver worker reports it). */
  constructor(
    private readonly ctx: Omit<StoreScpContext, 'openAssociations'>,
    private readonly logger: Logger,
    private readonly onConnections?: (open: number) => void,
  ) {}

  /** Listens on host:port (port 0 picks a free one); resolves with the bound port. */
  async listen(port: number, host: string): Promise<number> {
    const server = createServer({ noDelay: true }, (socket) => {
      this.accept(socket);
    });
    return this.bind(server, port, host, 'DICOM listener ready');
  }

  /**
   * Listens for DICOM TLS on host:`tls.port` (0 picks a free one); resolves with the bound port. Only a
   * completed handshake reaches the association; a failed one is logged (no association existed).
   */
  async listenTls(tls: ReceiverTls, host: string): Promise<number> {
    const server = createTlsServer({ ...tls.options, noDelay: true }, (socket) => {
      this.acceptTls(socket, tls);
    });
    server.on('tlsClientError', (err, socket) => {
      this.logger.warn({ remote: socket.remoteAddress, err: err.message }, 'DICOM TLS handshake failed');
    });
    return this.bind(server, tls.port, host, 'DICOM TLS listener ready');
  }

  private acceptTls(socket: TLSSocket, tls: ReceiverTls): void {
    // With a CA but no requirement, a certificate is optional; one that does not verify is still refused.
    if (tls.verifiesClients && !socket.authorized && Object.keys(socket.getPeerCertificate()).length > 0) {
      this.logger.warn(
        { remote: socket.remoteAddress, reason: String(socket.authorizationError) },
        'DICOM TLS client certificate refused',
      );
      socket.destroy();
      return;
    }
    this.accept(socket);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    this.ctx.metrics.associationsOpen.set(this.sockets.size);
    this.onConnections?.(this.sockets.size);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.ctx.metrics.associationsOpen.set(this.sockets.size);
      this.onConnections?.(this.sockets.size);
    });
    socket.on('error', () => undefined); // the association reports it
    // Counted when asked: the receiver writes inline only while it serves one association alone.
    new StoreScp(socket, { ...this.ctx, openAssociations: () => Math.max(0, this.sockets.size - 1) });
  }

  private async bind(server: Server, port: number, host: string, ready: string): Promise<number> {
    server.maxConnections = connectionLimit(this.ctx.policy.maxAssociations);
    server.on('drop', (dropped) => {
      this.logger.warn(
        { remote: dropped?.remoteAddress, maxConnections: server.maxConnections },
        'connection dropped: too many open connections',
      );
    });
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const bound = typeof address === 'object' && address ? address.port : port;
    this.logger.info({ host, port: bound }, ready);
    return bound;
  }

  /** Connections open now. */
  openConnections(): number {
    return this.sockets.size;
  }

  /** Stops accepting, then waits up to `drainMs` for open associations to end before cutting them. */
  async close(drainMs: number): Promise<void> {
    const servers = this.servers.splice(0);
    // 'close' fires only once every connection is gone, so wait for it after the drain.
    const closed = Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
    const deadline = Date.now() + drainMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

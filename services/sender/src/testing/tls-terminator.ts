import { connect, type AddressInfo, type Socket } from 'node:net';
import { createServer, type TLSSocket } from 'node:tls';

/** A TLS listener on loopback in front of a plain TCP server, as a reverse proxy terminating https. */
export interface TlsTerminator {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Accepts TLS on a free loopback port with `key` and `cert` and relays each connection's plain bytes to
 * `upstreamPort` on 127.0.0.1. Debian's Orthanc 1.10 crashes on its first https request (SslEnabled), so
 * tests reach its DICOMweb server through this, the way a site's reverse proxy would put it on https.
 */
export async function startTlsTerminator(
  upstreamPort: number,
  tls: { readonly key: string; readonly cert: string },
): Promise<TlsTerminator> {
  const sockets = new Set<Socket>();
  const server = createServer({ key: tls.key, cert: tls.cert }, (client: TLSSocket) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

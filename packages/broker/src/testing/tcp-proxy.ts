// A TCP relay to RabbitMQ that a test can cut and restore, to simulate a broker outage without touching the
// shared RabbitMQ server.
import { createServer, connect as connectTcp, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

/** Relays 127.0.0.1:<port> to the target; {@link TcpProxy.cut} drops every connection and refuses new ones. */
export class TcpProxy {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  get port(): number {
    return this.#port;
  }

  /** Starts listening (on the same port as before after a cut). */
  async start(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connectTcp(this.targetPort, this.targetHost);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => {
          this.#sockets.delete(socket);
        });
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    server.listen(this.#port, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');
    this.#port = address.port;
    this.#server = server;
  }

  /** Drops every relayed connection and stops accepting new ones, like a broker that went away. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    }
  }
}

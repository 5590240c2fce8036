import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay on loopback in front of a real server (S3, a DICOM node) that a test controls: it counts
 * connections and the bytes served back, can hold the server's answer once a number of bytes went
 * through (until released), and can cut every connection.
 */
export class TcpRelay {
  /** Connections accepted so far. */
  connections = 0;
  /** Bytes the server sent back through the relay so far (all connections). */
  served = 0;
  readonly #server: Server;
  readonly #pairs = new Set<{ client: Socket; upstream: Socket }>();
  #holdAt = Number.POSITIVE_INFINITY;
  #held: { upstream: Socket; client: Socket; rest: Buffer }[] = [];
  #onHeld: (() => void) | undefined;

  private constructor(
    server: Server,
    readonly port: number,
  ) {
    this.#server = server;
  }

  /** Listens on a free loopback port, relaying to `upstreamPort` on 127.0.0.1. */
  static async start(upstreamPort: number): Promise<TcpRelay> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const relay = new TcpRelay(server, address.port);
    server.on('connection', (client: Socket) => {
      relay.#accept(client, upstreamPort);
    });
    return relay;
  }

  /** Holds the server's bytes once `bytes` were served; resolves when that happened. */
  holdAfter(bytes: number): Promise<void> {
    this.#holdAt = bytes;
    return new Promise<void>((resolve) => {
      this.#onHeld = resolve;
    });
  }

  /** Lets everything held through, and everything after it. */
  release(): void {
    this.#holdAt = Number.POSITIVE_INFINITY;
    for (const { upstream, client, rest } of this.#held.splice(0)) {
      this.served += rest.length;
      client.write(rest);
      upstream.resume();
    }
  }

  /** Closes every open connection at once (held bytes are dropped); new connections still work. */
  cut(): void {
    this.#held = [];
    this.#holdAt = Number.POSITIVE_INFINITY;
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket, upstreamPort: number): void {
    this.connections++;
    const upstream = connect({ host: '127.0.0.1', port: upstreamPort });
    const pair = { client, upstream };
    this.#pairs.add(pair);
    const end = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      const room = this.#holdAt - this.served;
      if (room >= chunk.length) {
        this.served += chunk.length;
        client.write(chunk);
        return;
      }
      const now = chunk.subarray(0, Math.max(0, room));
      this.served += now.length;
      if (now.length > 0) client.write(now);
      upstream.pause();
      this.#held.push({ upstream, client, rest: chunk.subarray(now.length) });
      this.#onHeld?.();
      this.#onHeld = undefined;
    });
  }
}

import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay in front of the real S3 server that counts the bytes the client has sent through it, and
 * can cut every connection once the server has answered with more than a number of bytes.
 */
export interface CountingRelay {
  readonly port: number;
  /** Resolves once at least `bytes` have gone from the client to the server. */
  sent(bytes: number): Promise<void>;
  /** From now on, closes a connection once more than `bytes` went from the server to the client. */
  cutAfter(bytes: number): void;
  close(): Promise<void>;
}

/** Starts a {@link CountingRelay} on a free loopback port in front of `target`. */
export async function startCountingRelay(target: { host: string; port: number }): Promise<CountingRelay> {
  let sentBytes = 0;
  let cutAfter = Infinity;
  const waiters: Array<{ bytes: number; resolve: () => void }> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const [socket, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      // One side gone (a server killed, a client that gave up): the other learns it at once, as it would
      // from the peer itself over a direct connection.
      socket.on('close', () => {
        sockets.delete(socket);
        other.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      sentBytes += chunk.length;
      for (const waiter of waiters.filter((w) => sentBytes >= w.bytes)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    });
    let answered = 0;
    upstream.on('data', (chunk: Buffer) => {
      answered += chunk.length;
      if (answered > cutAfter) {
        client.destroy();
        upstream.destroy();
      }
    });
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  return {
    port: address.port,
    sent: (bytes) =>
      sentBytes >= bytes
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ bytes, resolve })),
    cutAfter: (bytes) => {
      cutAfter = bytes;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}

import { connect, type ChannelModel } from 'amqplib';
import type { Logger } from '@dicomflow/runtime';
import { amqpAddress, type AmqpAddress, type BrokerTlsFiles } from './amqp-address.js';
import { computeBackoff, errorText, TransientError } from './errors.js';

/** Where RabbitMQ is and how to log in. */
export interface BrokerConfig {
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost?: string;
  /** Connect over TLS (AMQPS) when present; the server certificate is verified, against `ca` if given. */
  tls?: BrokerTlsFiles;
}

/** What the connection keeper needs. */
export interface ConnectionKeeperOptions {
  readonly config: BrokerConfig;
  readonly logger: Logger;
  /** Shown by RabbitMQ as the connection's name (client property `connection_name`). */
  readonly connectionName: string;
  readonly reconnect: { initialMs: number; maxMs: number };
  /** Heartbeat in seconds; a dead peer is noticed after about two of them. */
  readonly heartbeatSeconds: number;
  /** Runs on every new connection before it counts as ready; a failure drops the connection and retries. */
  readonly onConnected: (connection: ChannelModel) => Promise<void>;
}

interface Waiter {
  resolve(connection: ChannelModel): void;
  reject(err: Error): void;
}

/**
 * Keeps one AMQP connection open: connects with capped exponential backoff (with jitter), and after an
 * unexpected close connects again and re-runs `onConnected`, until {@link ConnectionKeeper.close}.
 */
export class ConnectionKeeper {
  readonly #opts: ConnectionKeeperOptions;
  readonly #log: Logger;
  /** The connection once `onConnected` finished on it; undefined while (re)connecting. */
  #ready: ChannelModel | undefined;
  /** The connection being set up or in use, so a close event of an older one is ignored. */
  #current: ChannelModel | undefined;
  #closed = false;
  #connecting = false;
  #wakeUp: (() => void) | undefined;
  readonly #waiters = new Set<Waiter>();
  readonly #address: AmqpAddress;

  /** Reads the TLS files (when any) now: a missing or malformed one throws a PermanentError. */
  constructor(opts: ConnectionKeeperOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    this.#address = amqpAddress(opts.config, opts.heartbeatSeconds);
  }

  /** The ready connection, if there is one right now. */
  get connection(): ChannelModel | undefined {
    return this.#ready;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Starts connecting; resolves once the first connection is ready, rejects if closed before that. */
  async start(): Promise<void> {
    const first = this.waitForConnection(Number.POSITIVE_INFINITY);
    this.#connectLoop();
    await first;
  }

  /**
   * The ready connection; while there is none, waits for the reconnect up to `timeoutMs` and then rejects
   * with a {@link TransientError} (also when the keeper is closed).
   */
  async waitForConnection(timeoutMs: number): Promise<ChannelModel> {
    if (this.#ready) return this.#ready;
    if (this.#closed) throw new TransientError('broker connection is closed');
    return new Promise<ChannelModel>((resolve, reject) => {
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            this.#waiters.delete(waiter);
            reject(new TransientError(`not connected to RabbitMQ within ${timeoutMs} ms`));
          }, timeoutMs)
        : undefined;
      const waiter: Waiter = {
        resolve: (connection) => {
          clearTimeout(timer);
          resolve(connection);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#waiters.add(waiter);
    });
  }

  /** Stops reconnecting, closes the connection and rejects anyone still waiting for one. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeUp?.();
    for (const waiter of this.#waiters) waiter.reject(new TransientError('broker connection is closed'));
    this.#waiters.clear();
    const connection = this.#current;
    this.#current = undefined;
    this.#ready = undefined;
    if (connection) await connection.close();
  }

  // A method call, so that TypeScript does not narrow the flag across awaits that may change it.
  #isClosed(): boolean {
    return this.#closed;
  }

  #connectLoop(): void {
    if (this.#connecting || this.#closed) return;
    this.#connecting = true;
    void this.#connectUntilReady().finally(() => {
      this.#connecting = false;
    });
  }

  async #connectUntilReady(): Promise<void> {
    for (let attempt = 1; !this.#closed; attempt++) {
      const connection = await this.#tryConnect(attempt);
      if (connection) {
        for (const waiter of this.#waiters) waiter.resolve(connection);
        this.#waiters.clear();
        return;
      }
      if (this.#isClosed()) return;
      const delayMs = computeBackoff(attempt, { ...this.#opts.reconnect, jitter: true });
      this.#log.debug({ attempt, delayMs }, 'waiting before reconnecting to RabbitMQ');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.#wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wakeUp = undefined;
    }
  }

  async #tryConnect(attempt: number): Promise<ChannelModel | undefined> {
    const { config, connectionName } = this.#opts;
    let connection: ChannelModel;
    try {
      connection = await connect(this.#address.url, {
        ...this.#address.tls,
        clientProperties: { connection_name: connectionName },
        timeout: 10_000,
      });
    } catch (err) {
      this.#log.warn(
        {
          attempt,
          host: config.hostname,
          port: config.port,
          tls: config.tls !== undefined,
          err: errorText(err),
        },
        'cannot connect to RabbitMQ',
      );
      return undefined;
    }
    if (this.#closed) {
      await connection.close().catch(() => undefined);
      return undefined;
    }
    this.#current = connection;
    connection.on('error', (err: Error) => {
      this.#log.warn({ err: errorText(err) }, 'RabbitMQ connection error');
    });
    connection.on('close', () => {
      this.#onClose(connection);
    });
    connection.on('blocked', (reason: string) => {
      this.#log.warn({ reason }, 'RabbitMQ blocked the connection (resource alarm)');
    });
    connection.on('unblocked', () => {
      this.#log.info('RabbitMQ unblocked the connection');
    });
    try {
      await this.#opts.onConnected(connection);
    } catch (err) {
      this.#log.error({ attempt, err: errorText(err) }, 'setting up the RabbitMQ connection failed');
      if (this.#current === connection) this.#current = undefined;
      await connection.close().catch(() => undefined);
      return undefined;
    }
    if (this.#isClosed() || this.#current !== connection) return undefined;
    this.#ready = connection;
    this.#log.info({ attempt, connectionName }, 'connected to RabbitMQ');
    return connection;
  }

  #onClose(connection: ChannelModel): void {
    if (this.#current !== connection) return;
    this.#current = undefined;
    this.#ready = undefined;
    if (this.#closed) return;
    this.#log.warn('RabbitMQ connection lost; reconnecting');
    this.#connectLoop();
  }
}

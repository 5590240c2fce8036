import type { Options } from 'amqplib';
import { readTlsFiles, type TlsFiles, type TlsMaterial } from '@dicomflow/runtime';

/** The TLS files of a broker connection and the name to check its certificate against. */
export type BrokerTlsFiles = TlsFiles & { readonly servername?: string };

/** Where a broker is (BrokerConfig's shape, kept here so that this file needs no import of it). */
interface AmqpTarget {
  readonly hostname: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly vhost?: string;
  readonly tls?: BrokerTlsFiles;
}

/** What amqplib's `connect` takes for one broker: the address and the socket options. */
export interface AmqpAddress {
  readonly url: Options.Connect;
  /** TLS socket options (`ca`, `cert`, `key`, `servername`), empty for plain AMQP. */
  readonly tls: TlsMaterial & { servername?: string };
}

/**
 * The address of `config` for amqplib: `amqps` with the PEM files read (once, here: a missing or wrong
 * file fails now with a message naming it) when `config.tls` is set, plain `amqp` otherwise. The server's
 * certificate is always verified (Node's default), against `tls.ca` when given.
 */
export function amqpAddress(config: AmqpTarget, heartbeatSeconds?: number): AmqpAddress {
  const url: Options.Connect = {
    protocol: config.tls ? 'amqps' : 'amqp',
    hostname: config.hostname,
    port: config.port,
    username: config.username,
    password: config.password,
    vhost: config.vhost ?? '/',
    ...(heartbeatSeconds === undefined ? {} : { heartbeat: heartbeatSeconds }),
  };
  if (!config.tls) return { url, tls: {} };
  const material = readTlsFiles(config.tls, 'RabbitMQ');
  const servername = config.tls.servername;
  return {
    url,
    tls: { ...material, ...(servername === undefined || servername === '' ? {} : { servername }) },
  };
}

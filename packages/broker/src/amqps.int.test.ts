import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeTestCertificates,
  startRabbitNode,
  type RabbitNode,
  type TestCertificates,
} from '@dicomflow/test-helpers';
import type { StudyReceived } from '@dicomflow/messages';
import { connectBroker, PermanentError, type Broker, type BrokerConfig } from './index.js';
import { connectForDeadLetters } from './dead-letters.js';
import { captureLogs, studyReceived, uniqueName, waitFor } from './testing/rabbit-test-kit.js';

const FAST_RECONNECT = { initialMs: 50, maxMs: 500 };

let certs: TestCertificates;

beforeAll(async () => {
  certs = await makeTestCertificates();
}, 60_000);

afterAll(async () => {
  await certs.close();
});

/** Publishes one message through `broker` to a queue of its own and consumes it back. */
async function roundTrip(broker: Broker): Promise<StudyReceived[]> {
  const received: StudyReceived[] = [];
  const queue = uniqueName('amqps-roundtrip');
  const subscription = await broker.consume({ queue, bindings: ['study.received'] }, async (body) => {
    received.push(body);
    await Promise.resolve();
  });
  const body = studyReceived();
  await broker.publish('study.received', body);
  await waitFor(() => received.length === 1, 'the message over AMQPS');
  await subscription.cancel();
  return received;
}

/** Connects and waits for the first failed attempt's log line; returns its error text. */
async function firstConnectError(config: BrokerConfig): Promise<string> {
  const { logger, lines } = captureLogs();
  const stop = new AbortController();
  const connecting = connectBroker({
    config,
    logger,
    reconnect: FAST_RECONNECT,
    exchange: uniqueName('amqps-refused'),
    signal: stop.signal,
  }).catch((err: unknown) => err);
  await waitFor(() => lines.some((l) => l.msg === 'cannot connect to RabbitMQ'), 'a refused connection');
  stop.abort();
  expect(await connecting).toBeInstanceOf(Error);
  const line = lines.find((l) => l.msg === 'cannot connect to RabbitMQ');
  expect(line?.tls).toBe(true);
  return String(line?.err);
}

describe('AMQPS to RabbitMQ (server certificate only)', () => {
  let node: RabbitNode;
  let base: BrokerConfig;

  beforeAll(async () => {
    node = await startRabbitNode({
      tls: { caFile: certs.ca.certFile, certFile: certs.server.certFile, keyFile: certs.server.keyFile },
    });
    base = { hostname: '127.0.0.1', port: node.tlsPort ?? 0, username: 'guest', password: 'guest' };
  }, 180_000);

  afterAll(async () => {
    await node.close();
  }, 120_000);

  it('publishes and consumes over AMQPS with the CA file', async () => {
    const exchange = uniqueName('amqps');
    const broker = await connectBroker({
      config: { ...base, tls: { ca: certs.ca.certFile } },
      logger: captureLogs().logger,
      exchange,
      deadExchange: `${exchange}.dead`,
    });
    try {
      const received = await roundTrip(broker);
      expect(received).toHaveLength(1);
      expect(received[0]?.bucket).toBe(studyReceived().bucket);
    } finally {
      await broker.close();
    }
  });

  it('checks the server name: RABBIT_TLS_SERVERNAME localhost matches, another name is refused', async () => {
    const connection = await connectForDeadLetters({
      ...base,
      tls: { ca: certs.ca.certFile, servername: 'localhost' },
    });
    await connection.close();
    await expect(
      connectForDeadLetters({ ...base, tls: { ca: certs.ca.certFile, servername: 'rabbit.example.org' } }),
    ).rejects.toThrow(/rabbit\.example\.org/);
  });

  it('refuses a server whose certificate does not chain to the configured CA', async () => {
    const err = await firstConnectError({ ...base, tls: { ca: certs.otherCa.certFile } });
    expect(err).toMatch(/certificate/i);
    await expect(connectForDeadLetters({ ...base, tls: { ca: certs.otherCa.certFile } })).rejects.toThrow(
      /certificate/i,
    );
  });

  it('refuses a plain AMQP client on the TLS port', async () => {
    await expect(connectForDeadLetters(base)).rejects.toThrow();
  });

  it('stops at once, naming the file, when a TLS file is missing or not PEM', async () => {
    const missing = connectBroker({
      config: { ...base, tls: { ca: '/nonexistent/ca.pem' } },
      logger: captureLogs().logger,
    });
    await expect(missing).rejects.toBeInstanceOf(PermanentError);
    await expect(missing).rejects.toThrow(
      /RabbitMQ TLS: cannot read the CA certificate file \/nonexistent\/ca\.pem/,
    );
    await expect(
      connectBroker({ config: { ...base, tls: { ca: certs.ca.keyFile } }, logger: captureLogs().logger }),
    ).rejects.toThrow(/is not a PEM CA certificate/);
    await expect(
      connectBroker({
        config: { ...base, tls: { ca: certs.ca.certFile, cert: certs.client.certFile } },
        logger: captureLogs().logger,
      }),
    ).rejects.toThrow(/needs its key/);
  });
});

describe('AMQPS to RabbitMQ with client certificates required', () => {
  let node: RabbitNode;
  let base: BrokerConfig;

  beforeAll(async () => {
    node = await startRabbitNode({
      tls: {
        caFile: certs.ca.certFile,
        certFile: certs.server.certFile,
        keyFile: certs.server.keyFile,
        requireClientCert: true,
      },
    });
    base = { hostname: '127.0.0.1', port: node.tlsPort ?? 0, username: 'guest', password: 'guest' };
  }, 180_000);

  afterAll(async () => {
    await node.close();
  }, 120_000);

  it('works with a client certificate of the CA', async () => {
    const exchange = uniqueName('amqps-mtls');
    const broker = await connectBroker({
      config: {
        ...base,
        tls: { ca: certs.ca.certFile, cert: certs.client.certFile, key: certs.client.keyFile },
      },
      logger: captureLogs().logger,
      exchange,
      deadExchange: `${exchange}.dead`,
    });
    try {
      expect(await roundTrip(broker)).toHaveLength(1);
    } finally {
      await broker.close();
    }
  });

  it('is refused without a client certificate', async () => {
    await expect(connectForDeadLetters({ ...base, tls: { ca: certs.ca.certFile } })).rejects.toThrow();
    const err = await firstConnectError({ ...base, tls: { ca: certs.ca.certFile } });
    expect(err.length).toBeGreaterThan(0);
  });

  it('is refused with a client certificate of another CA', async () => {
    await expect(
      connectForDeadLetters({
        ...base,
        tls: {
          ca: certs.ca.certFile,
          cert: certs.strangerClient.certFile,
          key: certs.strangerClient.keyFile,
        },
      }),
    ).rejects.toThrow();
  });
});

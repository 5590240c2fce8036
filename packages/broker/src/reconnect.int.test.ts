import { createServer } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectBroker, TransientError, type Broker } from './index.js';
import {
  captureLogs,
  closeConnectionsNamed,
  RABBIT,
  RabbitTestKit,
  studyReceived,
  uniqueName,
  waitFor,
} from './testing/rabbit-test-kit.js';
import { TcpProxy } from './testing/tcp-proxy.js';

const FAST_RECONNECT = { initialMs: 50, maxMs: 500 };

function countLines(lines: readonly Record<string, unknown>[], msg: string): number {
  return lines.filter((l) => l.msg === msg).length;
}

describe('broker reconnect', () => {
  let kit: RabbitTestKit;
  const brokers: Broker[] = [];
  const proxies: TcpProxy[] = [];

  beforeEach(async () => {
    kit = await RabbitTestKit.open();
  });

  afterEach(async () => {
    for (const broker of brokers.splice(0)) await broker.close();
    for (const proxy of proxies.splice(0)) await proxy.cut();
    await kit.cleanup();
  });

  async function startProxy(): Promise<TcpProxy> {
    const proxy = new TcpProxy(RABBIT.hostname, RABBIT.port);
    await proxy.start();
    proxies.push(proxy);
    return proxy;
  }

  it('handles every message at least once when the server closes the connection mid-flow', async () => {
    const connectionName = uniqueName('broker-test-conn');
    const logs = captureLogs();
    const broker = await connectBroker({
      config: RABBIT,
      logger: logs.logger,
      exchange: kit.exchange,
      deadExchange: kit.deadExchange,
      connectionName,
      reconnect: FAST_RECONNECT,
    });
    brokers.push(broker);
    const queue = kit.queue();
    const handled = new Set<string>();
    await broker.consume({ queue, bindings: ['study.received'], prefetch: 10 }, async (_body, ctx) => {
      await sleep(1);
      handled.add(ctx.messageId);
    });

    const published: string[] = [];
    const stopPublishing = new AbortController();
    const publishing = (async () => {
      for (let i = 0; !stopPublishing.signal.aborted; i++) {
        await broker.publish('study.received', studyReceived(), { messageId: `m-${i}` });
        published.push(`m-${i}`);
      }
    })();

    await waitFor(() => handled.size >= 50, '50 handled messages');
    expect(await closeConnectionsNamed(connectionName)).toBe(1);
    await waitFor(() => countLines(logs.lines, 'connected to RabbitMQ') === 2, 'the reconnect');
    const afterReconnect = published.length;
    await waitFor(() => published.length >= afterReconnect + 50, '50 more published after the reconnect');
    stopPublishing.abort();
    await publishing;
    await waitFor(() => published.every((id) => handled.has(id)), 'every published message handled');

    expect(countLines(logs.lines, 'RabbitMQ connection lost; reconnecting')).toBe(1);
    expect(published.length).toBeGreaterThan(100);
    expect([...published].filter((id) => !handled.has(id))).toEqual([]);
    await waitFor(async () => (await kit.messageCount(queue)) === 0, 'an empty queue');
    expect(await kit.messageCount(`${queue}.dead`)).toBe(0);
  });

  it('holds a publish made while disconnected and completes it after the reconnect', async () => {
    const proxy = await startProxy();
    let duringOutage: { publish: Promise<void>; check: Promise<void> } | undefined;
    const holder: { broker?: Broker } = {};
    const logs = captureLogs((line) => {
      // Runs synchronously inside the connection's close handler: the broker is disconnected right now.
      const broker = holder.broker;
      if (line.msg === 'RabbitMQ connection lost; reconnecting' && broker && !duringOutage) {
        duringOutage = {
          publish: broker.publish('study.received', studyReceived(), { messageId: 'held' }),
          check: broker.check(),
        };
        duringOutage.publish.catch(() => undefined);
        duringOutage.check.catch(() => undefined);
      }
    });
    const broker = await connectBroker({
      config: { ...RABBIT, port: proxy.port },
      logger: logs.logger,
      exchange: kit.exchange,
      deadExchange: kit.deadExchange,
      reconnect: FAST_RECONNECT,
    });
    holder.broker = broker;
    brokers.push(broker);
    const queue = kit.queue();
    await broker.assertWorkQueue(queue, ['study.received']);

    await proxy.cut();
    await waitFor(() => duringOutage !== undefined, 'the disconnect');
    await waitFor(
      () => countLines(logs.lines, 'cannot connect to RabbitMQ') >= 2,
      'failed reconnect attempts',
    );
    await proxy.start();
    const outage = duringOutage as unknown as { publish: Promise<void>; check: Promise<void> };

    await expect(outage.check).rejects.toThrow('not connected to RabbitMQ');
    await expect(outage.publish).resolves.toBeUndefined();
    const message = await kit.waitForMessage(queue);
    expect(message.properties.messageId).toBe('held');
    await expect(broker.check()).resolves.toBeUndefined();
  });

  it('rejects a publish with a TransientError when the outage outlasts the publish timeout', async () => {
    const proxy = await startProxy();
    const logs = captureLogs();
    const broker = await connectBroker({
      config: { ...RABBIT, port: proxy.port },
      logger: logs.logger,
      exchange: kit.exchange,
      deadExchange: kit.deadExchange,
      reconnect: FAST_RECONNECT,
      publishTimeoutMs: 300,
    });
    brokers.push(broker);
    await proxy.cut();
    await waitFor(
      () => countLines(logs.lines, 'RabbitMQ connection lost; reconnecting') === 1,
      'the disconnect',
    );

    const publish = broker.publish('study.received', studyReceived());
    await expect(publish).rejects.toThrow(TransientError);
    await expect(publish).rejects.toThrow(/not confirmed within 300 ms/);
  });

  it('keeps retrying the first connection until aborted', async () => {
    const unused = createServer();
    unused.listen(0, '127.0.0.1');
    await once(unused, 'listening');
    const address = unused.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await new Promise<void>((resolve) => {
      unused.close(() => {
        resolve();
      });
    });

    const abort = new AbortController();
    const logs = captureLogs((line) => {
      if (line.msg === 'cannot connect to RabbitMQ' && line.attempt === 3) abort.abort();
    });
    await expect(
      connectBroker({
        config: { ...RABBIT, port },
        logger: logs.logger,
        reconnect: { initialMs: 10, maxMs: 50 },
        signal: abort.signal,
      }),
    ).rejects.toThrow(TransientError);
    expect(countLines(logs.lines, 'cannot connect to RabbitMQ')).toBe(3);
  });
});

import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StudyReceived } from '@dicomflow/messages';
import {
  connectBroker,
  errorKind,
  PermanentError,
  UnroutableError,
  type Broker,
  type DeliveryContext,
} from './index.js';
import { captureLogs, RABBIT, RabbitTestKit, studyReceived, waitFor } from './testing/rabbit-test-kit.js';

describe('broker publish and consume', () => {
  let kit: RabbitTestKit;
  let broker: Broker;

  beforeEach(async () => {
    kit = await RabbitTestKit.open();
    broker = await connectBroker({
      config: RABBIT,
      logger: captureLogs().logger,
      exchange: kit.exchange,
      deadExchange: kit.deadExchange,
      appId: 'broker-test',
    });
  });

  afterEach(async () => {
    await broker.close();
    await kit.cleanup();
  });

  it('publishes persistent JSON with id, correlation id, type, timestamp, priority and schema-version', async () => {
    const queue = kit.queue();
    await broker.assertWorkQueue(queue, ['study.received']);
    const body = studyReceived();
    const messageId = randomUUID();
    const before = Math.floor(Date.now() / 1000);
    await broker.publish('study.received', body, {
      messageId,
      correlationId: 'run-1',
      priority: 3,
      headers: { origin: 'test' },
    });
    const after = Math.ceil(Date.now() / 1000);

    const message = await kit.waitForMessage(queue);
    expect(JSON.parse(message.content.toString('utf8'))).toEqual(body);
    expect(message.fields.exchange).toBe(kit.exchange);
    expect(message.fields.routingKey).toBe('study.received');
    const p = message.properties;
    expect(p.deliveryMode).toBe(2);
    expect(p.contentType).toBe('application/json');
    expect(p.messageId).toBe(messageId);
    expect(p.correlationId).toBe('run-1');
    expect(p.type).toBe('study.received');
    expect(p.priority).toBe(3);
    expect(p.appId).toBe('broker-test');
    expect(p.timestamp).toBeGreaterThanOrEqual(before);
    expect(p.timestamp).toBeLessThanOrEqual(after);
    expect(p.headers).toEqual({ 'schema-version': '1', origin: 'test' });
  });

  it('defaults the correlation id to a fresh message id', async () => {
    const queue = kit.queue();
    await broker.assertWorkQueue(queue, ['study.received']);
    await broker.publish('study.received', studyReceived());
    const { properties } = await kit.waitForMessage(queue);
    expect(properties.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(properties.correlationId).toBe(properties.messageId);
  });

  it('hands a consumed message and its context to the handler, then acks it', async () => {
    const queue = kit.queue();
    const received: { body: StudyReceived; ctx: DeliveryContext }[] = [];
    const subscription = await broker.consume({ queue, bindings: ['study.received'] }, async (body, ctx) => {
      received.push({ body, ctx });
      await Promise.resolve();
    });
    const body = studyReceived();
    await broker.publish('study.received', body, { messageId: 'm-1', correlationId: 'c-1', priority: 2 });
    await waitFor(() => received.length === 1, 'the handler');
    await subscription.cancel();

    const [{ body: got, ctx }] = received as [{ body: StudyReceived; ctx: DeliveryContext }];
    expect(got).toEqual(body);
    expect(ctx).toMatchObject({
      messageId: 'm-1',
      correlationId: 'c-1',
      routingKey: 'study.received',
      attempt: 1,
      redelivered: false,
      priority: 2,
      headers: { 'schema-version': '1' },
    });
    expect(await kit.messageCount(queue)).toBe(0);
    expect(await kit.messageCount(`${queue}.dead`)).toBe(0);
  });

  it('delivers a priority-5 message before 20 earlier priority-0 ones', async () => {
    const queue = kit.queue();
    await broker.assertWorkQueue(queue, ['study.received']);
    for (let i = 0; i < 20; i++)
      await broker.publish('study.received', studyReceived(), { messageId: `low-${i}` });
    await broker.publish('study.received', studyReceived(), { messageId: 'urgent', priority: 5 });

    const order: string[] = [];
    const subscription = await broker.consume(
      { queue, bindings: ['study.received'], prefetch: 1 },
      async (_body, ctx) => {
        order.push(ctx.messageId);
        await Promise.resolve();
      },
    );
    await waitFor(() => order.length === 21, 'all 21 messages');
    await subscription.cancel();
    expect(order[0]).toBe('urgent');
    expect(order.slice(1)).toEqual(Array.from({ length: 20 }, (_, i) => `low-${i}`));
  });

  it('refuses to publish an invalid body or priority, naming the problem', async () => {
    const bad = { ...studyReceived(), tarSize: -5 };
    await expect(broker.publish('study.received', bad)).rejects.toThrow(PermanentError);
    await expect(broker.publish('study.received', bad)).rejects.toThrow('/tarSize: must be >= 0');
    await expect(broker.publish('study.received', studyReceived(), { priority: 9 })).rejects.toThrow(
      'priority must be an integer 0-5',
    );
  });

  it('fails a publish that no queue receives, as transient, so the caller keeps the message', async () => {
    const err: unknown = await broker.publish('study.received', studyReceived()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnroutableError);
    expect(errorKind(err)).toBe('transient');
    // Once a queue is bound, the same message goes through.
    const queue = kit.queue();
    await broker.assertWorkQueue(queue, ['study.received']);
    await expect(broker.publish('study.received', studyReceived())).resolves.toBeUndefined();
  });

  it('reports readiness and rejects use after close', async () => {
    await expect(broker.check()).resolves.toBeUndefined();
    await broker.close();
    await broker.close();
    await expect(broker.check()).rejects.toThrow('broker is closed');
    await expect(broker.publish('study.received', studyReceived())).rejects.toThrow('closed');
  });
});

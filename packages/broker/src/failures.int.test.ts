import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ATTEMPT_HEADER,
  connectBroker,
  ERROR_HEADER,
  GoneError,
  PermanentError,
  QUEUE_HEADER,
  REASON_HEADER,
  TransientError,
  type Broker,
} from './index.js';
import { captureLogs, RABBIT, RabbitTestKit, studyReceived, waitFor } from './testing/rabbit-test-kit.js';

const RETRY_DELAYS = [50, 100] as const;

describe('broker failure handling', () => {
  let kit: RabbitTestKit;
  let broker: Broker;
  let logs: ReturnType<typeof captureLogs>;

  beforeEach(async () => {
    kit = await RabbitTestKit.open();
    logs = captureLogs();
    broker = await connectBroker({
      config: RABBIT,
      logger: logs.logger,
      exchange: kit.exchange,
      deadExchange: kit.deadExchange,
    });
  });

  afterEach(async () => {
    await broker.close();
    await kit.cleanup();
  });

  it('retries a transient failure through the delay queues with a rising attempt count', async () => {
    const queue = kit.queue('test.q', RETRY_DELAYS);
    const attempts: number[] = [];
    const subscription = await broker.consume(
      { queue, bindings: ['study.received'], maxAttempts: 4, retryDelaysMs: RETRY_DELAYS },
      async (_body, ctx) => {
        attempts.push(ctx.attempt);
        await Promise.resolve();
        if (ctx.attempt < 3) throw new TransientError(`flaky ${ctx.attempt}`);
      },
    );
    await broker.publish('study.received', studyReceived(), { messageId: 'flaky', priority: 4 });
    await waitFor(() => attempts.length === 3, 'three attempts');
    await subscription.cancel();

    expect(attempts).toEqual([1, 2, 3]);
    expect(await kit.messageCount(queue)).toBe(0);
    expect(await kit.messageCount(`${queue}.dead`)).toBe(0);
    const retries = logs.lines.filter((l) => l.msg === 'handler failed; retrying later');
    expect(retries.map((l) => [l.attempt, l.delayMs])).toEqual([
      [1, 50],
      [2, 100],
    ]);
  });

  it('keeps a message through an outage longer than maxAttempts retries, then handles it once', async () => {
    const queue = kit.queue('test.outage', RETRY_DELAYS);
    const seen: number[] = [];
    let handled = 0;
    const subscription = await broker.consume(
      { queue, bindings: ['study.received'], maxAttempts: 2, retryDelaysMs: RETRY_DELAYS },
      async (_body, ctx) => {
        seen.push(ctx.attempt);
        await Promise.resolve();
        // The database is down for the first six deliveries (three times maxAttempts).
        if (seen.length <= 6) {
          throw new TransientError('cannot write the event', {
            cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
          });
        }
        handled += 1;
      },
    );
    await broker.publish('study.received', studyReceived(), { messageId: 'outage' });
    await waitFor(() => handled === 1, 'the message handled after the outage');
    await subscription.cancel();

    // Outage retries are not attempts: every delivery was attempt 1, and nothing was dead-lettered.
    expect(seen).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(await kit.messageCount(`${queue}.dead`)).toBe(0);
    const retries = logs.lines.filter((l) => l.outage === true);
    expect(retries).toHaveLength(6);
    expect(retries.map((l) => l.delayMs)).toEqual([50, 100, 100, 100, 100, 100]);
  });

  it('dead-letters a message that failed maxAttempts times, with its properties and the reason', async () => {
    const queue = kit.queue('test.q', RETRY_DELAYS);
    const body = studyReceived();
    let calls = 0;
    await broker.consume(
      { queue, bindings: ['study.received'], maxAttempts: 3, retryDelaysMs: RETRY_DELAYS },
      async () => {
        calls++;
        await Promise.resolve();
        throw new Error('storage unreachable');
      },
    );
    await broker.publish('study.received', body, {
      messageId: 'doomed',
      correlationId: 'run-9',
      priority: 2,
    });

    const dead = await kit.waitForMessage(`${queue}.dead`);
    expect(calls).toBe(3);
    expect(JSON.parse(dead.content.toString('utf8'))).toEqual(body);
    expect(dead.fields.exchange).toBe(kit.deadExchange);
    expect(dead.fields.routingKey).toBe(queue);
    expect(dead.properties).toMatchObject({
      messageId: 'doomed',
      correlationId: 'run-9',
      type: 'study.received',
      priority: 2,
      deliveryMode: 2,
    });
    const headers = dead.properties.headers ?? {};
    expect(headers).toMatchObject({
      'schema-version': '1',
      [ATTEMPT_HEADER]: 3,
      [REASON_HEADER]: 'max-attempts',
      [QUEUE_HEADER]: queue,
    });
    expect(headers[ERROR_HEADER]).toBe('failed 3 times; last: Error: storage unreachable');
    expect(Object.keys(headers).filter((h) => h.startsWith('x-death'))).toEqual([]);
    expect(await kit.messageCount(queue)).toBe(0);
  });

  it('dead-letters at once on a PermanentError, also one recognised only by its kind', async () => {
    const queue = kit.queue('test.q', RETRY_DELAYS);
    const calls: string[] = [];
    await broker.consume(
      { queue, bindings: ['study.received'], retryDelaysMs: RETRY_DELAYS },
      async (_b, ctx) => {
        calls.push(ctx.messageId);
        await Promise.resolve();
        if (ctx.messageId === 'own') throw new PermanentError('flow file is invalid');
        throw Object.assign(new Error('bad input from elsewhere'), { kind: 'permanent' });
      },
    );
    await broker.publish('study.received', studyReceived(), { messageId: 'own' });
    const first = await kit.waitForMessage(`${queue}.dead`);
    await broker.publish('study.received', studyReceived(), { messageId: 'duck' });
    const second = await kit.waitForMessage(`${queue}.dead`);

    expect(calls).toEqual(['own', 'duck']);
    expect(first.properties.headers).toMatchObject({
      [REASON_HEADER]: 'permanent',
      [ERROR_HEADER]: 'PermanentError: flow file is invalid',
      [ATTEMPT_HEADER]: 1,
    });
    expect(second.properties.headers).toMatchObject({
      [REASON_HEADER]: 'permanent',
      [ERROR_HEADER]: 'Error: bad input from elsewhere',
    });
  });

  it('dead-letters schema-invalid and unparseable messages without calling the handler', async () => {
    const queue = kit.queue('test.q', RETRY_DELAYS);
    let calls = 0;
    await broker.consume({ queue, bindings: ['study.received'], retryDelaysMs: RETRY_DELAYS }, async () => {
      calls++;
      await Promise.resolve();
    });
    const props = { persistent: true, type: 'study.received', messageId: 'raw' };
    kit.channel.publish(
      kit.exchange,
      'study.received',
      Buffer.from(JSON.stringify({ ...studyReceived(), receiptId: 'nope' })),
      props,
    );
    const invalid = await kit.waitForMessage(`${queue}.dead`);
    kit.channel.publish(kit.exchange, 'study.received', Buffer.from('{not json'), props);
    const unparseable = await kit.waitForMessage(`${queue}.dead`);

    expect(calls).toBe(0);
    expect(invalid.properties.headers?.[REASON_HEADER]).toBe('invalid');
    expect(invalid.properties.headers?.[ERROR_HEADER]).toMatch(
      /^invalid study\.received message: \/receiptId: must match format "uuid"$/,
    );
    expect(unparseable.properties.headers?.[REASON_HEADER]).toBe('unparseable');
    expect(unparseable.properties.headers?.[ERROR_HEADER]).toMatch(/^body is not JSON: SyntaxError/);
    expect(unparseable.content.toString('utf8')).toBe('{not json');
  });

  it('acks and logs a message whose subject is gone', async () => {
    const queue = kit.queue('test.q', RETRY_DELAYS);
    let calls = 0;
    const subscription = await broker.consume(
      { queue, bindings: ['study.received'], retryDelaysMs: RETRY_DELAYS },
      async () => {
        calls++;
        await Promise.resolve();
        throw new GoneError('run was deleted');
      },
    );
    await broker.publish('study.received', studyReceived(), { messageId: 'gone-1' });
    await waitFor(
      () => logs.lines.some((l) => l.msg === 'message refers to something gone; dropped'),
      'the log',
    );
    await subscription.cancel();

    const line = logs.lines.find((l) => l.msg === 'message refers to something gone; dropped');
    expect(line).toMatchObject({ level: 30, messageId: 'gone-1', queue, err: 'GoneError: run was deleted' });
    expect(calls).toBe(1);
    // Cancelling returns unacked messages to the queue, so an empty queue means it was acked.
    expect(await kit.messageCount(queue)).toBe(0);
    expect(await kit.messageCount(`${queue}.dead`)).toBe(0);
  });

  it('rejects a consume spec that cannot work', async () => {
    const queue = kit.queue();
    await expect(
      broker.consume({ queue, bindings: ['study.received'], maxAttempts: 0, retryDelaysMs: [] }, async () => {
        await Promise.resolve();
      }),
    ).rejects.toThrow(/maxAttempts must be an integer >= 1; retryDelaysMs must be a non-empty list/);
  });
});

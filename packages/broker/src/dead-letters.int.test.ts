import type { ChannelModel } from 'amqplib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  connectBroker,
  connectForDeadLetters,
  listDeadLetters,
  PermanentError,
  replayDeadLetters,
  REPLAYED_AT_HEADER,
  type Broker,
} from './index.js';
import { captureLogs, RABBIT, RabbitTestKit, studyReceived, waitFor } from './testing/rabbit-test-kit.js';

describe('dead letters an operator can list and put back', () => {
  let kit: RabbitTestKit;
  let broker: Broker;
  let operator: ChannelModel;

  beforeEach(async () => {
    kit = await RabbitTestKit.open();
    broker = await connectBroker({
      config: RABBIT,
      logger: captureLogs().logger,
      exchange: kit.exchange,
      deadExchange: kit.deadExchange,
    });
    operator = await connectForDeadLetters(RABBIT);
  });

  afterEach(async () => {
    await operator.close();
    await broker.close();
    await kit.cleanup();
  });

  it('lists a dead letter with its reason and run, and replays it once its cause is fixed', async () => {
    const queue = kit.queue('test.dead-replay', [50]);
    const other = kit.queue('test.dead-other', [50]);
    let fixed = false;
    const handled: Array<{ id: string; attempt: number; replayed: boolean }> = [];
    const subscription = await broker.consume(
      { queue, bindings: ['study.received'], maxAttempts: 1, retryDelaysMs: [50] },
      async (_body, ctx) => {
        await Promise.resolve();
        if (!fixed) throw new PermanentError('the flow file is broken');
        handled.push({
          id: ctx.messageId,
          attempt: ctx.attempt,
          replayed: typeof ctx.headers[REPLAYED_AT_HEADER] === 'string',
        });
      },
    );
    // A second queue on the same routing key takes the message fine: a replay must not reach it again.
    let otherDeliveries = 0;
    const otherSubscription = await broker.consume(
      { queue: other, bindings: ['study.received'], maxAttempts: 1, retryDelaysMs: [50] },
      async () => {
        await Promise.resolve();
        otherDeliveries += 1;
      },
    );
    await broker.publish('study.received', studyReceived(), { messageId: 'm-1', correlationId: 'run-1' });
    await broker.publish('study.received', studyReceived(), { messageId: 'm-2', correlationId: 'run-2' });
    await waitFor(async () => (await kit.messageCount(`${queue}.dead`)) === 2, 'two dead letters');

    const listed = await listDeadLetters(operator, [queue, other, 'no.such.queue']);
    expect(listed).toEqual([
      expect.objectContaining({
        id: 'm-1',
        queue,
        type: 'study.received',
        reason: 'permanent',
        runId: 'run-1',
      }),
      expect.objectContaining({ id: 'm-2', queue, reason: 'permanent', runId: 'run-2' }),
    ]);
    expect(listed[0]?.error).toContain('the flow file is broken');
    expect(listed[0]?.attempts).toBe(1);
    expect(Date.parse(listed[0]?.deadAt ?? '')).toBeGreaterThan(0);
    // Listing leaves them where they are.
    expect(await kit.messageCount(`${queue}.dead`)).toBe(2);

    fixed = true;
    const replayed = await replayDeadLetters(operator, [queue, other], (letter) => letter.id === 'm-2');
    expect(replayed.map((letter) => letter.id)).toEqual(['m-2']);
    await waitFor(() => handled.length === 1, 'the replayed message handled');
    expect(handled).toEqual([{ id: 'm-2', attempt: 1, replayed: true }]);
    expect((await listDeadLetters(operator, [queue])).map((letter) => letter.id)).toEqual(['m-1']);

    // Everything left in the queue goes back at once.
    await replayDeadLetters(operator, [queue], () => true);
    await waitFor(() => handled.length === 2, 'the second message handled');
    expect(await kit.messageCount(`${queue}.dead`)).toBe(0);
    expect(otherDeliveries).toBe(2);
    await subscription.cancel();
    await otherSubscription.cancel();
  });
});

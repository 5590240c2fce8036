import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectBroker, deleteSuiteQueues, suiteQueues, type Broker } from './index.js';
import { captureLogs, RABBIT, RabbitTestKit, studyReceived, uniqueName } from './testing/rabbit-test-kit.js';

describe('suite queues', () => {
  let kit: RabbitTestKit;
  let broker: Broker;
  const prefix = `${uniqueName('test.suite')}.`;

  beforeEach(async () => {
    kit = await RabbitTestKit.open();
    broker = await connectBroker({
      config: RABBIT,
      logger: captureLogs().logger,
      exchange: kit.exchange,
      deadExchange: kit.deadExchange,
    });
  });

  afterEach(async () => {
    await broker.close();
    await deleteSuiteQueues(await kit.connection.createChannel(), prefix);
    await kit.cleanup();
  });

  it('declares every queue of the suite, so a message waits for a consumer that never started', async () => {
    await broker.assertSuiteQueues(prefix);
    await broker.assertSuiteQueues(prefix); // idempotent
    await broker.publish('study.received', studyReceived());
    const queues = suiteQueues(prefix);
    // The fingerprinter's queue and the tracker's (bound to every key) each hold it; no other does.
    expect(await kit.messageCount(queues.fingerprinter.name)).toBe(1);
    expect(await kit.messageCount(queues.flowTracker.name)).toBe(1);
    expect(await kit.messageCount(queues.sender.name)).toBe(0);
    expect(await kit.messageCount(queues.jobsCpu.name)).toBe(0);
  });

  it('refuses to delete the production queues', async () => {
    await expect(deleteSuiteQueues(kit.channel, '')).rejects.toThrow(/production/);
  });
});

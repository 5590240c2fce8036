import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { resendMessageId, type Resend } from '@dicomflow/messages';
import { waitFor } from '@dicomflow/test-helpers';
import { members, useSenderTest } from './testing/peers.js';
import { fileCount, receivedDigests, sentDigests } from './testing/received.js';
import type { SendEvent } from './testing/sender-harness.js';

describe('sender resend', () => {
  const t = useSenderTest();

  /** The events of one delivery (`resend` or the run's own), by message id. */
  const eventsWithId = (messageId: string): SendEvent[] =>
    t.world.events.filter((event) => event.messageId === messageId);

  it('sends every instance again for a resend of a delivered run, once per resend', async () => {
    const dcmtk = await t.storescp('dcmtk');
    await t.world.startSender();
    const { runId, finished } = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' }],
    });
    expect((await t.world.waitForOutcome(runId)).routingKey).toBe('send.finished');
    expect(await fileCount(dcmtk.dir)).toBe(t.series.length);

    const resend: Resend = { id: randomUUID(), requestedAt: new Date().toISOString() };
    const publishResend = () =>
      t.world.broker.publish(
        'flow.finished',
        { ...finished, resend },
        { messageId: resendMessageId(runId, resend.id), correlationId: runId },
      );
    await publishResend();
    const finishedId = `${runId}:resend:${resend.id}:send.finished`;
    await waitFor(() => eventsWithId(finishedId).length === 1, 'the resend delivered');
    const [outcome] = eventsWithId(finishedId);
    expect(outcome?.body.resend).toEqual(resend);
    expect(outcome?.routingKey === 'send.finished' && outcome.body.outcomes).toEqual([
      expect.objectContaining({ sent: t.series.length, failed: 0, attempts: 1 }),
    ]);
    expect(eventsWithId(`${runId}:resend:${resend.id}:send.started`)).toHaveLength(1);
    // Every instance arrived a second time (dcmtk keeps each reception as a file of its own).
    expect(await fileCount(dcmtk.dir)).toBe(2 * t.series.length);
    expect(await receivedDigests(dcmtk.dir)).toEqual(await sentDigests(t.series));

    // The same resend delivered again (a redelivery) sends nothing more: its acknowledgements are its own.
    await publishResend();
    await waitFor(() => eventsWithId(finishedId).length === 2, 'the repeated resend settled');
    const repeat = eventsWithId(finishedId)[1];
    expect(repeat?.routingKey === 'send.finished' && repeat.body.outcomes[0]?.sent).toBe(t.series.length);
    expect(await fileCount(dcmtk.dir)).toBe(2 * t.series.length);
    // The run's own events are untouched.
    expect(eventsWithId(`${runId}:send.finished`)).toHaveLength(1);
  });
});

import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rerunRunIdFor, type FlowRerun } from '@dicomflow/messages';
import { RUN_STATUS } from '../db/entities.js';
import { resendStory } from '../testing/recovery-story.js';
import { runStory, shuffled, type RunStory } from '../testing/run-story.js';
import { foldRun } from './fold-run.js';
import type { TrackedEvent } from './tracked-event.js';

const eventsOf = (...stories: { events: readonly { event: TrackedEvent }[] }[]): TrackedEvent[] =>
  stories.flatMap((s) => s.events.map((e) => e.event)).filter((e) => e.routingKey !== 'study.received');

const fold = (story: RunStory, events: readonly TrackedEvent[]) =>
  foldRun(story.runId, events, undefined).run;

describe('foldRun with resends', () => {
  it('makes a run whose delivery failed sent (4) once a resend got through, and drops the send failure', () => {
    const story = runStory({ sendFails: true });
    expect(fold(story, eventsOf(story))).toMatchObject({ status: 400, failureReason: 'send-unreachable' });
    const resend = resendStory(story);
    const run = fold(story, eventsOf(story, resend));
    expect(run).toMatchObject({ status: RUN_STATUS.sent, failureReason: null, failureMessage: null });
    expect(run.sent?.toISOString()).toBe(
      new Date(Date.parse(resend.resend.requestedAt) + 5000).toISOString(),
    );
  });

  it('goes through 2 (asked for) and 3 (sending) while the latest resend is under way', () => {
    const story = runStory({ sendFails: true });
    expect(fold(story, eventsOf(story, resendStory(story, { requestOnly: true }))).status).toBe(
      RUN_STATUS.finished,
    );
    expect(fold(story, eventsOf(story, resendStory(story, { noOutcome: true }))).status).toBe(
      RUN_STATUS.sending,
    );
  });

  it('makes a sent run failed when its latest resend failed, with that reason; a later one decides again', () => {
    const story = runStory();
    const failed = resendStory(story, { fails: true, requestedAt: new Date('2026-03-01T10:00:00Z') });
    expect(fold(story, eventsOf(story, failed))).toMatchObject({
      status: 400,
      failureReason: 'send-rejected',
      failureMessage: 'PACS@pacs.example:104: 5 not delivered (rejected)',
    });
    const again = resendStory(story, { requestedAt: new Date('2026-03-01T11:00:00Z') });
    expect(fold(story, eventsOf(story, failed, again))).toMatchObject({ status: 4, failureReason: null });
  });

  it('keeps a failed job failed: a resend never hides it', () => {
    const story = runStory({ failAtStep: 0 });
    const run = fold(story, eventsOf(story));
    expect(run.status).toBe(400);
    expect(run.failureReason).toBe('exit-code');
  });

  it('gives the same row for every order of the run and its resends, with repeats', () => {
    const story = runStory({ sendFails: true, sendRetries: 2 });
    const first = resendStory(story, { fails: true, requestedAt: new Date('2026-03-01T10:00:00Z') });
    const second = resendStory(story, { requestedAt: new Date('2026-03-01T11:00:00Z') });
    const events = eventsOf(story, first, second);
    const expected = foldRun(story.runId, events, undefined);
    expect(expected.run.status).toBe(RUN_STATUS.sent);
    for (let seed = 1; seed <= 20; seed++) {
      const mixed = shuffled([...events, ...events.slice(0, seed % events.length)], seed);
      expect(foldRun(story.runId, mixed, undefined)).toEqual(expected);
    }
  });
});

describe('foldRun with a rerun request', () => {
  it('shows the new run pending with the flow and sender of the request, until it matched', () => {
    const rerunOf = randomUUID();
    const rerunId = randomUUID();
    const request: FlowRerun = {
      runId: rerunRunIdFor(rerunOf, rerunId),
      rerunOf,
      rerunId,
      requestedAt: '2026-03-01T10:00:00.000Z',
      receiptId: randomUUID(),
      flowFile: 'ct-copy.yaml',
      flowName: 'CT copy',
      flowVersion: '1.0',
      bucket: 'incoming',
      tarKey: 'r.tar',
      indexKey: 'r.index.jsonl',
      tarSubdir: [],
      callingAeTitle: 'SCANNER1',
      callingHost: '10.0.0.7',
    };
    const { run } = foldRun(request.runId, [{ routingKey: 'flow.rerun', body: request }], undefined);
    expect(run).toMatchObject({
      id: request.runId,
      status: RUN_STATUS.pending,
      name: 'CT copy',
      flowFile: 'ct-copy.yaml',
      receiptId: request.receiptId,
      sender: 'SCANNER1@10.0.0.7',
    });
    expect(run.ts.toISOString()).toBe(request.requestedAt);
  });
});

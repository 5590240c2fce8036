import { describe, expect, it } from 'vitest';
import { RUN_STATUS } from '../db/entities.js';
import { runStory, shuffled } from '../testing/run-story.js';
import { capLog, foldRun, LOG_CAP_CHARS, type ReceiptFacts } from './fold-run.js';
import type { TrackedEvent } from './tracked-event.js';

const receipt: ReceiptFacts = {
  receivedAt: new Date('2026-01-05T10:00:00Z'),
  callingAeTitle: 'SCANNER1',
  callingHost: '10.0.0.7',
  patient: '',
  studyUids: '1.2.3',
};

const runEvents = (story: ReturnType<typeof runStory>): TrackedEvent[] =>
  story.events.map((e) => e.event).filter((e) => e.routingKey !== 'study.received');

describe('foldRun', () => {
  it('takes a happy run to status 4 with every column', () => {
    const story = runStory();
    const { run, steps } = foldRun(story.runId, runEvents(story), receipt);
    expect(run).toMatchObject({
      status: RUN_STATUS.sent,
      name: 'CT copy',
      version: '1.0',
      priority: 2,
      sender: 'SCANNER1@10.0.0.7',
      destinations: 'PACS@pacs.example:104',
      uid: '1.2.3',
      failureReason: null,
      stepCount: 2,
    });
    expect(run.ts.toISOString()).toBe('2026-01-05T10:00:01.000Z');
    expect(run.dispatched?.toISOString()).toBe('2026-01-05T10:00:02.000Z');
    expect(run.sent).not.toBeNull();
    expect(steps.map((s) => [s.step, s.state, s.image, s.queue, s.exitCode, s.worker])).toEqual([
      [0, 'finished', 'model-0:1', 'job.cpu', 0, 'worker-1'],
      [1, 'finished', 'model-1:1', 'job.gpu', 0, 'worker-1'],
    ]);
  });

  it('gives the same row for every order and with repeats', () => {
    for (const options of [
      {},
      { failAtStep: 1 },
      { sendFails: true },
      { sendRetries: 3 },
      { sendRetries: 2, noSendOutcome: true },
    ]) {
      const story = runStory(options);
      const events = runEvents(story);
      const expected = foldRun(story.runId, events, receipt);
      for (let seed = 1; seed <= 20; seed++) {
        const mixed = shuffled([...events, ...events.slice(0, seed % events.length)], seed);
        expect(foldRun(story.runId, mixed, receipt)).toEqual(expected);
      }
    }
  });

  it('never goes back: a late job.started leaves a sent run at 4', () => {
    const story = runStory();
    const events = runEvents(story);
    const started = events.filter((e) => e.routingKey === 'job.started');
    expect(foldRun(story.runId, [...events, ...started], receipt).run.status).toBe(RUN_STATUS.sent);
    const { run } = foldRun(
      story.runId,
      events.filter((e) => e.routingKey === 'job.finished'),
      undefined,
    );
    expect(run.status).toBe(RUN_STATUS.running);
  });

  it('shows why a run failed: the job reason, or the send failure', () => {
    const failed = runStory({ failAtStep: 0 });
    const { run, steps } = foldRun(failed.runId, runEvents(failed), receipt);
    expect(run).toMatchObject({
      status: 400,
      failureReason: 'exit-code',
      failureMessage: 'the container exited with code 3',
    });
    expect(steps[0]).toMatchObject({
      state: 'failed',
      exitCode: 3,
      log: 'boom\n',
      failureReason: 'exit-code',
    });
    const send = runStory({ sendFails: true });
    expect(foldRun(send.runId, runEvents(send), receipt).run).toMatchObject({
      status: 400,
      failureReason: 'send-unreachable',
      sent: null,
    });
  });

  it('keeps the latest retry of a target while sending, and after the send ended', () => {
    const story = runStory({ sendRetries: 3, noSendOutcome: true });
    const { run, retries } = foldRun(story.runId, runEvents(story), receipt);
    expect(run.status).toBe(RUN_STATUS.sending);
    expect(retries).toEqual([
      {
        runId: story.runId,
        target: 'PACS@pacs.example:104',
        kind: 'destination',
        attempt: 3,
        maxAttempts: 10,
        errorCode: 'ECONNREFUSED',
        errorMessage: 'pacs.example:104: connect ECONNREFUSED 10.0.0.9:104',
        retryingAt: new Date('2026-01-05T10:00:30.000Z'),
        nextAttemptAt: new Date('2026-01-05T10:00:32.000Z'),
      },
    ]);
    const delivered = runStory({ sendRetries: 3 });
    const after = foldRun(delivered.runId, runEvents(delivered), receipt);
    expect(after.run.status).toBe(RUN_STATUS.sent);
    expect(after.retries.map((r) => r.attempt)).toEqual([3]);
  });

  it('counts a retry before send.started as sending', () => {
    const story = runStory({ sendRetries: 1, noSendOutcome: true });
    const events = runEvents(story).filter((e) => e.routingKey !== 'send.started');
    expect(foldRun(story.runId, events, receipt).run).toMatchObject({
      status: RUN_STATUS.sending,
      destinations: 'PACS@pacs.example:104',
    });
  });

  it('keeps the end of a long log', () => {
    const log = `${'a'.repeat(LOG_CAP_CHARS)}END`;
    const capped = capLog(log);
    expect(capped.length).toBe(LOG_CAP_CHARS);
    expect(capped.endsWith('END')).toBe(true);
  });
});

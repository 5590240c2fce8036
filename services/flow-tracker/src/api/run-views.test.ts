import { describe, expect, it } from 'vitest';
import type { RunRow, SendRetryRow, StepRow } from '../db/entities.js';
import { runDetailView, waitingFor } from './run-views.js';

function step(overrides: Partial<StepRow>): StepRow {
  return {
    runId: 'r',
    step: 0,
    state: 'dispatched',
    image: 'seg:1',
    queue: 'job.cpu',
    worker: '',
    gpu: '',
    imageId: '',
    repoDigests: [],
    dispatched: new Date(0),
    started: null,
    ended: null,
    exitCode: null,
    log: null,
    failureReason: null,
    failureMessage: null,
    ...overrides,
  };
}

const run = (status: RunRow['status']): RunRow => ({ status }) as RunRow;

function retry(overrides: Partial<SendRetryRow> = {}): SendRetryRow {
  return {
    runId: 'r',
    target: 'PACS@10.0.0.9:104',
    kind: 'destination',
    attempt: 2,
    maxAttempts: 10,
    errorCode: 'ECONNREFUSED',
    errorMessage: '10.0.0.9:104: connect ECONNREFUSED 10.0.0.9:104',
    retryingAt: new Date('2026-01-05T10:00:10.000Z'),
    nextAttemptAt: new Date('2026-01-05T10:00:14.000Z'),
    ...overrides,
  };
}

describe('waitingFor', () => {
  it('says a GPU job waits for a consumer with a GPU slot', () => {
    expect(waitingFor(run(0), [step({ queue: 'job.gpu' })])).toMatch(/job\.gpu.*GPU slot.*GPUS/);
  });

  it('says a CPU job waits for a CPU slot', () => {
    expect(waitingFor(run(1), [step({ state: 'finished' }), step({ step: 1 })])).toMatch(
      /^step 1 is queued on job\.cpu/,
    );
  });

  it('is null once every job started, and for runs that ended', () => {
    expect(waitingFor(run(1), [step({ state: 'running' })])).toBeNull();
    expect(waitingFor(run(400), [step({ queue: 'job.gpu' })])).toBeNull();
    expect(waitingFor(run(4), [])).toBeNull();
  });
});

describe('waitingFor while sending', () => {
  it('names the destination, the last error and the next attempt of a retried delivery', () => {
    expect(waitingFor(run(3), [step({ state: 'finished' })], [retry()])).toBe(
      'delivery to PACS@10.0.0.9:104 is retried: attempt 2 of 10 failed ' +
        '(ECONNREFUSED: 10.0.0.9:104: connect ECONNREFUSED 10.0.0.9:104); next attempt at 2026-01-05T10:00:14.000Z',
    );
  });

  it('lists every target being retried', () => {
    const text = waitingFor(
      run(3),
      [],
      [retry(), retry({ target: 'CT1@scanner:11112', errorCode: '0xA700' })],
    );
    expect(text?.split('; next attempt at ')).toHaveLength(3);
    expect(text).toMatch(/^delivery to PACS@10\.0\.0\.9:104 .*; delivery to CT1@scanner:11112 .*\(0xA700: /);
  });

  it('is null while sending without retries, and once the send finished or failed', () => {
    expect(waitingFor(run(3), [], [])).toBeNull();
    expect(waitingFor(run(4), [], [retry()])).toBeNull();
    expect(waitingFor(run(400), [], [retry()])).toBeNull();
  });
});

describe('runDetailView', () => {
  const sending = {
    id: 'r',
    ts: new Date('2026-01-05T10:00:00.000Z'),
    destinations: 'PACS@10.0.0.9:104',
    received: null,
    dispatched: null,
    finished: new Date('2026-01-05T10:00:05.000Z'),
    sent: null,
    status: 3,
    failureReason: null,
  } as RunRow;

  it('shows each retried target with its error and next attempt, and waitingFor while sending', () => {
    const view = runDetailView(sending, [], [retry()]);
    expect(view.waitingFor).toMatch(/^delivery to PACS@10\.0\.0\.9:104 is retried/);
    expect(view.sendRetries).toEqual([
      {
        destination: 'PACS@10.0.0.9:104',
        kind: 'destination',
        attempt: 2,
        maxAttempts: 10,
        error: { code: 'ECONNREFUSED', message: '10.0.0.9:104: connect ECONNREFUSED 10.0.0.9:104' },
        retryingAt: '2026-01-05T10:00:10.000Z',
        nextAttemptAt: '2026-01-05T10:00:14.000Z',
      },
    ]);
  });

  it('keeps the last retry of a delivered run but waits for nothing', () => {
    const view = runDetailView({ ...sending, status: 4, sent: new Date() }, [], [retry()]);
    expect(view.waitingFor).toBeNull();
    expect(view.sendRetries).toHaveLength(1);
    expect(runDetailView(sending, []).sendRetries).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import type { RunRow, StepRow } from '../db/entities.js';
import { waitingFor } from './run-views.js';

function step(overrides: Partial<StepRow>): StepRow {
  return {
    runId: 'r',
    step: 0,
    state: 'dispatched',
    image: 'seg:1',
    queue: 'job.cpu',
    worker: '',
    gpu: '',
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

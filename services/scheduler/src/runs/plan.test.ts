import { describe, expect, it } from 'vitest';
import { validateMessage } from '@dicomflow/messages';
import { flowMatched } from '../testing/fixtures.js';
import { planAfterFailed, planAfterFinished, planFirst, stepOutput, type Dispatch } from './plan.js';

const ctx = { runsBucket: 'runs', now: new Date('2024-05-01T12:00:00.000Z') };

function expectValid(dispatch: Dispatch): void {
  expect(validateMessage(dispatch.routingKey, dispatch.body)).toEqual({ ok: true, value: dispatch.body });
}

describe('planFirst', () => {
  it('sends the first model the run members of the receipt, at the flow priority', () => {
    const run = flowMatched({ models: 3, priority: 2 });
    const dispatch = planFirst(run, ctx);
    expectValid(dispatch);
    expect(dispatch).toMatchObject({
      messageId: `${run.runId}:job:0`,
      runId: run.runId,
      step: 0,
      routingKey: 'job.cpu',
      priority: 2,
    });
    expect(dispatch.body).toMatchObject({
      step: 0,
      stepCount: 3,
      priority: 2,
      model: run.flow.models[0],
      input: {
        kind: 'receipt',
        bucket: run.bucket,
        tarKey: run.tarKey,
        indexKey: run.indexKey,
        members: run.members,
        tarSubdir: run.tarSubdir,
      },
      output: { bucket: 'runs', key: `${run.runId}/0/output.tar` },
      dispatchedAt: '2024-05-01T12:00:00.000Z',
    });
  });

  it('routes a GPU model to job.gpu', () => {
    expect(planFirst(flowMatched({ models: 1, gpu: [0] }), ctx).routingKey).toBe('job.gpu');
  });

  it('fails a run whose flow has no models', () => {
    const run = flowMatched({ models: 0 });
    const dispatch = planFirst(run, ctx);
    expectValid(dispatch);
    expect(dispatch).toMatchObject({ messageId: `${run.runId}:flow.failed`, routingKey: 'flow.failed' });
    expect(dispatch.body).toMatchObject({ reason: 'no-models' });
    expect(dispatch.body).not.toHaveProperty('step');
  });
});

describe('planAfterFinished', () => {
  it('sends the next model the output of the step before, at priority 5', () => {
    const run = flowMatched({ models: 3, priority: 0, gpu: [1] });
    const output = stepOutput('runs', run.runId, 0);
    const dispatch = planAfterFinished(run, 0, output, ctx);
    expectValid(dispatch);
    expect(dispatch).toMatchObject({
      messageId: `${run.runId}:job:1`,
      step: 1,
      routingKey: 'job.gpu',
      priority: 5,
    });
    expect(dispatch.body).toMatchObject({
      step: 1,
      priority: 5,
      input: { kind: 'step', step: 0, bucket: 'runs', key: `${run.runId}/0/output.tar` },
      output: { bucket: 'runs', key: `${run.runId}/1/output.tar` },
    });
  });

  it('finishes the run after the last model, with destinations and return-to-sender', () => {
    const run = flowMatched({ models: 2 });
    const output = stepOutput('runs', run.runId, 1);
    const dispatch = planAfterFinished(run, 1, output, ctx);
    expectValid(dispatch);
    expect(dispatch).toMatchObject({ messageId: `${run.runId}:flow.finished`, routingKey: 'flow.finished' });
    expect(dispatch.body).toEqual({
      runId: run.runId,
      receiptId: run.receiptId,
      flowName: run.flow.name,
      flowVersion: run.flow.version,
      flowFile: run.flowFile,
      finishedAt: '2024-05-01T12:00:00.000Z',
      stepCount: 2,
      output,
      destinations: run.flow.destinations,
      returnToSender: { host: run.callingHost, aeTitle: run.callingAeTitle, ports: [11112] },
    });
  });
});

describe('planAfterFailed', () => {
  it('fails the run with the step, reason, message and exit code', () => {
    const run = flowMatched({ models: 2 });
    const dispatch = planAfterFailed(
      run,
      { runId: run.runId, step: 1, reason: 'exit-code', message: 'exited with 3', exitCode: 3 },
      ctx,
    );
    expectValid(dispatch);
    expect(dispatch).toMatchObject({
      messageId: `${run.runId}:flow.failed`,
      routingKey: 'flow.failed',
      priority: 5,
    });
    expect(dispatch.body).toMatchObject({
      step: 1,
      reason: 'exit-code',
      message: 'exited with 3',
      exitCode: 3,
    });
  });

  it('leaves out an exit code the job did not report', () => {
    const run = flowMatched({ models: 1 });
    const dispatch = planAfterFailed(
      run,
      { runId: run.runId, step: 0, reason: 'timeout', message: 'after 60 s' },
      ctx,
    );
    expectValid(dispatch);
    expect(dispatch.body).not.toHaveProperty('exitCode');
  });
});

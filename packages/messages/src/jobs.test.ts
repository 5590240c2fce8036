import { describe, expect, it } from 'vitest';
import {
  checkFlowDefinition,
  flowFailedMessageId,
  flowFinishedMessageId,
  isSchemaRoutingKey,
  JOB_QUEUES,
  jobFailedMessageId,
  jobFinishedMessageId,
  jobMessageId,
  jobRoutingKey,
  messageJsonSchemas,
  validateMessage,
  type FlowFailed,
  type FlowFinished,
  type FlowModel,
  type Job,
  type JobFailed,
  type JobFinished,
} from './index.js';

const runId = '0b7f4d3e-2c1a-4f5e-8d9c-7b6a5f4e3d2c';
const receiptId = '6f1c7d7e-3f7b-4a8e-9d55-2a3f5d0c1b9e';

function model(overrides: Record<string, unknown> = {}): FlowModel {
  const checked = checkFlowDefinition({ models: [{ docker_kwargs: { image: 'seg:1' }, ...overrides }] });
  const first = checked.ok ? checked.flow.models[0] : undefined;
  if (!first) throw new Error('fixture model is invalid');
  return first;
}

function firstJob(): Job {
  return {
    runId,
    receiptId,
    step: 0,
    stepCount: 2,
    flowName: 'ct',
    flowVersion: '1',
    flowFile: 'ct.yaml',
    flowHash: 'a'.repeat(64),
    model: model(),
    input: {
      kind: 'receipt',
      bucket: 'incoming',
      tarKey: `${receiptId}.tar`,
      indexKey: `${receiptId}.index.json`,
      members: ['1.2.3/1.2.3.4/1.2.3.4.5.dcm'],
      tarSubdir: ['StudyInstanceUID', 'SeriesInstanceUID'],
    },
    output: { bucket: 'runs', key: `${runId}/0/output.tar` },
    priority: 3,
    dispatchedAt: '2024-05-01T12:00:02.000Z',
  };
}

function secondJob(): Job {
  return {
    ...firstJob(),
    step: 1,
    model: model({ gpu: true }),
    input: { kind: 'step', step: 0, bucket: 'runs', key: `${runId}/0/output.tar` },
    output: { bucket: 'runs', key: `${runId}/1/output.tar` },
    priority: 5,
  };
}

function errorOf(result: { ok: true } | { ok: false; error: string }): string {
  if (result.ok) throw new Error('expected a validation failure');
  return result.error;
}

describe('job.cpu / job.gpu', () => {
  it('accepts a first job reading the receipt and a later job reading the step before', () => {
    expect(validateMessage('job.cpu', firstJob()).ok).toBe(true);
    expect(validateMessage('job.gpu', secondJob()).ok).toBe(true);
  });

  it('refuses an unknown field, in the job and in its input', () => {
    expect(errorOf(validateMessage('job.cpu', { ...firstJob(), patientName: 'x' }))).toBe(
      '/patientName: is not allowed',
    );
    const job = secondJob();
    const error = errorOf(validateMessage('job.cpu', { ...job, input: { ...job.input, members: ['a'] } }));
    // A union: the error names what each kind of input lacks or must not have.
    expect(error).toMatch(/^\/input\//);
  });

  it('refuses an input of unknown kind and a receipt input without members', () => {
    const job = firstJob();
    expect(errorOf(validateMessage('job.cpu', { ...job, input: { ...job.input, kind: 'url' } }))).toContain(
      '/input/kind',
    );
    expect(errorOf(validateMessage('job.cpu', { ...job, input: { ...job.input, members: [] } }))).toContain(
      '/input/members: must NOT have fewer than 1 items',
    );
  });

  it('checks the model against the flow format (no privileged containers)', () => {
    const job = firstJob();
    const privileged = { ...job.model, docker_kwargs: { image: 'x', privileged: true } };
    expect(errorOf(validateMessage('job.cpu', { ...job, model: privileged }))).toContain(
      '/model/docker_kwargs/privileged: is not allowed',
    );
  });

  it('refuses a model without the fields the flow format defaults (messages carry them filled in)', () => {
    const { timeout: _dropped, ...partial } = firstJob().model;
    expect(errorOf(validateMessage('job.cpu', { ...firstJob(), model: partial }))).toBe(
      '/model/timeout: is required',
    );
  });

  it('refuses a priority outside 0-5, a negative step and a missing output', () => {
    expect(errorOf(validateMessage('job.cpu', { ...firstJob(), priority: 6 }))).toBe(
      '/priority: must be <= 5',
    );
    expect(errorOf(validateMessage('job.cpu', { ...firstJob(), step: -1 }))).toBe('/step: must be >= 0');
    const { output: _dropped, ...noOutput } = firstJob();
    expect(errorOf(validateMessage('job.cpu', noOutput))).toBe('/output: is required');
  });
});

describe('job.finished / job.failed', () => {
  const finished: JobFinished = { runId, step: 1, output: { bucket: 'runs', key: `${runId}/1/output.tar` } };

  it('accepts a bare job.finished and one with the run facts', () => {
    expect(validateMessage('job.finished', finished).ok).toBe(true);
    const full: JobFinished = {
      ...finished,
      exitCode: 0,
      startedAt: '2024-05-01T12:00:03.000Z',
      finishedAt: '2024-05-01T12:01:03.000Z',
      logExcerpt: 'done\n',
      worker: 'gpu-node-1',
    };
    expect(validateMessage('job.finished', full).ok).toBe(true);
  });

  it('accepts each failure reason and refuses others', () => {
    for (const reason of ['timeout', 'exit-code', 'image', 'input', 'output', 'error'] as const) {
      const failed: JobFailed = { runId, step: 0, reason, message: 'stopped after 1800 s' };
      expect(validateMessage('job.failed', failed).ok).toBe(true);
    }
    expect(errorOf(validateMessage('job.failed', { runId, step: 0, reason: 'oops', message: '' }))).toMatch(
      /^\/reason: must be one of "timeout", "exit-code"/,
    );
  });

  it('requires a message on job.failed and a uuid run id', () => {
    expect(errorOf(validateMessage('job.failed', { runId, step: 0, reason: 'timeout' }))).toBe(
      '/message: is required',
    );
    expect(errorOf(validateMessage('job.finished', { ...finished, runId: 'run-1' }))).toBe(
      '/runId: must match format "uuid"',
    );
  });
});

describe('flow.finished / flow.failed', () => {
  const run = { runId, receiptId, flowName: 'ct', flowVersion: '1', flowFile: 'ct.yaml' };

  it('accepts a finished run with destinations and return-to-sender', () => {
    const body: FlowFinished = {
      ...run,
      finishedAt: '2024-05-01T12:05:00.000Z',
      stepCount: 2,
      output: { bucket: 'runs', key: `${runId}/1/output.tar` },
      destinations: [{ host: 'pacs', port: 104, ae_title: 'PACS' }],
      returnToSender: { host: '10.0.0.7', aeTitle: 'SCANNER1', ports: [104] },
    };
    expect(validateMessage('flow.finished', body).ok).toBe(true);
    expect(
      errorOf(
        validateMessage('flow.finished', { ...body, returnToSender: { ...body.returnToSender, ports: [0] } }),
      ),
    ).toBe('/returnToSender/ports/0: must be >= 1');
  });

  it('accepts a failed run with or without the failing step', () => {
    const body: FlowFailed = {
      ...run,
      failedAt: '2024-05-01T12:05:00.000Z',
      step: 1,
      reason: 'exit-code',
      message: 'exited with 3',
      exitCode: 3,
    };
    expect(validateMessage('flow.failed', body).ok).toBe(true);
    const { step: _step, exitCode: _code, ...early } = body;
    expect(validateMessage('flow.failed', { ...early, reason: 'no-models' }).ok).toBe(true);
  });
});

describe('run message contract', () => {
  it('has a schema for every routing key of a run', () => {
    for (const key of ['job.cpu', 'job.gpu', 'job.finished', 'job.failed', 'flow.finished', 'flow.failed']) {
      expect(isSchemaRoutingKey(key)).toBe(true);
      expect(messageJsonSchemas()[key]).toMatchObject({ type: 'object', additionalProperties: false });
    }
  });

  it('routes GPU models to job.gpu and names the job queues', () => {
    expect(jobRoutingKey(model())).toBe('job.cpu');
    expect(jobRoutingKey(model({ gpu: true }))).toBe('job.gpu');
    expect(JOB_QUEUES).toEqual({ 'job.cpu': 'jobs.cpu', 'job.gpu': 'jobs.gpu' });
  });

  it('derives message ids from the run id and step', () => {
    expect(jobMessageId(runId, 2)).toBe(`${runId}:job:2`);
    expect(jobFinishedMessageId(runId, 2)).toBe(`${runId}:job.finished:2`);
    expect(jobFailedMessageId(runId, 2)).toBe(`${runId}:job.failed:2`);
    expect(flowFinishedMessageId(runId)).toBe(`${runId}:flow.finished`);
    expect(flowFailedMessageId(runId)).toBe(`${runId}:flow.failed`);
  });
});

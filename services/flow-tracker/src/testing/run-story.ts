import { randomUUID } from 'node:crypto';
import {
  checkFlowDefinition,
  flowFailedMessageId,
  flowFinishedMessageId,
  jobFailedMessageId,
  jobFinishedMessageId,
  jobMessageId,
  jobStartedMessageId,
  sendFailedMessageId,
  sendFinishedMessageId,
  sendStartedMessageId,
  type FlowMatched,
  type Job,
  type StudyReceived,
} from '@dicomflow/messages';
import type { TrackedEvent } from '../events/tracked-event.js';

/** An event with the message id its publisher gives it. */
export interface StoryEvent {
  readonly messageId: string;
  readonly event: TrackedEvent;
}

/** How a test run goes. */
export interface StoryOptions {
  /** How many models (default 2). */
  models?: number;
  /** The step whose job fails (the run then fails there). */
  failAtStep?: number;
  /** The run reaches the sender, which fails. */
  sendFails?: boolean;
  /** Stop after the flow finished (no send events). */
  noSend?: boolean;
  /** `send.retrying` events (attempts 1..n failed with ECONNREFUSED) after send.started (default 0). */
  sendRetries?: number;
  /** Stop while sending: no send.finished or send.failed. */
  noSendOutcome?: boolean;
  /** When the study arrived (default 2026-01-05T10:00:00Z); the run's events follow by seconds. */
  receivedAt?: Date;
  studyInstanceUid?: string;
  /** Instances per series of the receipt (default [3, 2]). */
  seriesCounts?: readonly number[];
  flowName?: string;
  bucket?: string;
  /** Bucket of the step outputs (default `runs`). */
  outputBucket?: string;
}

/** A receipt and one run of it, as the suite's services would publish them, in the order they would. */
export interface RunStory {
  readonly runId: string;
  readonly receiptId: string;
  readonly studyInstanceUid: string;
  readonly events: readonly StoryEvent[];
}

/** The image id the story's consumer reports for the image of `step` (a local build: no registry digest). */
export const storyImageId = (step: number): string => `sha256:${String(step % 10).repeat(64)}`;

const at = (base: Date, seconds: number): string => new Date(base.getTime() + seconds * 1000).toISOString();

/** A `study.received` of `studyInstanceUid` with the given series sizes. */
export function studyReceived(opts: {
  receiptId?: string;
  studyInstanceUid: string;
  seriesCounts: readonly number[];
  receivedAt: Date;
  bucket?: string;
}): StudyReceived {
  const receiptId = opts.receiptId ?? randomUUID();
  const series = opts.seriesCounts.map((instanceCount, i) => ({
    seriesInstanceUid: `${opts.studyInstanceUid}.${i + 1}`,
    modality: 'CT',
    instanceCount,
  }));
  return {
    receiptId,
    receivedAt: opts.receivedAt.toISOString(),
    grouping: 'association',
    callingAeTitle: 'SCANNER1',
    calledAeTitle: 'STORESCP',
    callingHost: '10.0.0.7',
    bucket: opts.bucket ?? 'incoming',
    tarKey: `${receiptId}.tar`,
    indexKey: `${receiptId}.index.jsonl`,
    tarSize: 1000,
    tarSubdir: [],
    instanceCount: series.reduce((n, s) => n + s.instanceCount, 0),
    studies: [{ studyInstanceUid: opts.studyInstanceUid, series }],
  };
}

/** Every event of one run of a new receipt, with the deterministic message ids of the contract. */
export function runStory(opts: StoryOptions = {}): RunStory {
  const models = opts.models ?? 2;
  const base = opts.receivedAt ?? new Date('2026-01-05T10:00:00Z');
  const studyInstanceUid = opts.studyInstanceUid ?? `1.2.826.0.1.${Math.floor(Math.random() * 1e9)}`;
  const received = studyReceived({
    studyInstanceUid,
    seriesCounts: opts.seriesCounts ?? [3, 2],
    receivedAt: base,
    ...(opts.bucket === undefined ? {} : { bucket: opts.bucket }),
  });
  const { receiptId } = received;
  const runId = randomUUID();
  const checked = checkFlowDefinition({
    name: opts.flowName ?? 'CT copy',
    version: '1.0',
    priority: 2,
    triggers: [{ Modality: 'CT' }],
    models: Array.from({ length: models }, (_, step) => ({
      docker_kwargs: { image: `model-${step}:1` },
      gpu: step === 1,
    })),
    destinations: [{ host: 'pacs.example', port: 104, ae_title: 'PACS' }],
  });
  if (!checked.ok) throw new Error(`fixture flow is invalid: ${JSON.stringify(checked.issues)}`);
  const flow = checked.flow;
  const run = { runId, receiptId, flowName: flow.name, flowVersion: flow.version, flowFile: 'ct-copy.yaml' };
  const matched: FlowMatched = {
    runId,
    receiptId,
    matchedAt: at(base, 1),
    flowFile: run.flowFile,
    flow,
    flowHash: 'ab'.repeat(32),
    bucket: received.bucket,
    tarKey: received.tarKey,
    indexKey: received.indexKey,
    members: ['a.dcm'],
    tarSubdir: [],
    priority: flow.priority,
    callingAeTitle: received.callingAeTitle,
    callingHost: received.callingHost,
  };
  const events: StoryEvent[] = [
    { messageId: randomUUID(), event: { routingKey: 'study.received', body: received } },
    { messageId: randomUUID(), event: { routingKey: 'flow.matched', body: matched } },
  ];
  let t = 2;
  for (let step = 0; step < models; step++) {
    const model = flow.models[step];
    if (!model) throw new Error('no model');
    const job: Job = {
      ...run,
      step,
      stepCount: models,
      flowHash: matched.flowHash,
      model,
      input:
        step === 0
          ? {
              kind: 'receipt',
              bucket: received.bucket,
              tarKey: received.tarKey,
              indexKey: received.indexKey,
              members: ['a.dcm'],
              tarSubdir: [],
            }
          : { kind: 'step', step: step - 1, bucket: 'runs', key: `${runId}/${step - 1}/output.tar` },
      output: { bucket: 'runs', key: `${runId}/${step}/output.tar` },
      priority: step === 0 ? flow.priority : 5,
      dispatchedAt: at(base, t),
    };
    const routingKey = model.gpu ? 'job.gpu' : 'job.cpu';
    events.push({ messageId: jobMessageId(runId, step), event: { routingKey, body: job } });
    const startedAt = at(base, t + 3);
    events.push({
      messageId: jobStartedMessageId(runId, step),
      event: {
        routingKey: 'job.started',
        body: {
          runId,
          step,
          startedAt,
          image: model.docker_kwargs.image,
          worker: 'worker-1',
          imageId: storyImageId(step),
        },
      },
    });
    const finishedAt = at(base, t + 10);
    if (opts.failAtStep === step) {
      events.push({
        messageId: jobFailedMessageId(runId, step),
        event: {
          routingKey: 'job.failed',
          body: {
            runId,
            step,
            reason: 'exit-code',
            message: 'the container exited with code 3',
            exitCode: 3,
            startedAt,
            finishedAt,
            logExcerpt: 'boom\n',
            worker: 'worker-1',
          },
        },
      });
      events.push({
        messageId: flowFailedMessageId(runId),
        event: {
          routingKey: 'flow.failed',
          body: {
            ...run,
            failedAt: at(base, t + 11),
            step,
            reason: 'exit-code',
            message: 'the container exited with code 3',
            exitCode: 3,
          },
        },
      });
      return { runId, receiptId, studyInstanceUid, events };
    }
    events.push({
      messageId: jobFinishedMessageId(runId, step),
      event: {
        routingKey: 'job.finished',
        body: {
          runId,
          step,
          output: job.output,
          exitCode: 0,
          startedAt,
          finishedAt,
          logExcerpt: `step ${step} ok\n`,
          worker: 'worker-1',
        },
      },
    });
    t += 12;
  }
  const target = { kind: 'destination' as const, host: 'pacs.example', port: 104, aeTitle: 'PACS' };
  events.push({
    messageId: flowFinishedMessageId(runId),
    event: {
      routingKey: 'flow.finished',
      body: {
        ...run,
        finishedAt: at(base, t),
        stepCount: models,
        output: { bucket: opts.outputBucket ?? 'runs', key: `${runId}/${models - 1}/output.tar` },
        destinations: flow.destinations,
        returnToSender: { host: received.callingHost, aeTitle: received.callingAeTitle, ports: [] },
      },
    },
  });
  if (opts.noSend) return { runId, receiptId, studyInstanceUid, events };
  events.push({
    messageId: sendStartedMessageId(runId),
    event: {
      routingKey: 'send.started',
      body: { ...run, startedAt: at(base, t + 1), targets: [target], instanceCount: 5, skipped: 0 },
    },
  });
  for (let attempt = 1; attempt <= (opts.sendRetries ?? 0); attempt++)
    events.push({
      messageId: randomUUID(),
      event: {
        routingKey: 'send.retrying',
        body: {
          ...run,
          retryingAt: at(base, t + 1 + attempt),
          target,
          attempt,
          maxAttempts: 10,
          nextAttemptAt: at(base, t + 3 + attempt),
          error: { code: 'ECONNREFUSED', message: 'pacs.example:104: connect ECONNREFUSED 10.0.0.9:104' },
        },
      },
    });
  if (opts.noSendOutcome) return { runId, receiptId, studyInstanceUid, events };
  if (opts.sendFails) {
    events.push({
      messageId: sendFailedMessageId(runId),
      event: {
        routingKey: 'send.failed',
        body: {
          ...run,
          failedAt: at(base, t + 5),
          instanceCount: 5,
          skipped: 0,
          outcomes: [
            {
              target,
              sent: 0,
              failed: 5,
              attempts: 3,
              reason: 'unreachable',
              message: 'connection refused',
              failures: [],
            },
          ],
          message: 'PACS@pacs.example:104 unreachable after 3 attempts',
        },
      },
    });
  } else {
    events.push({
      messageId: sendFinishedMessageId(runId),
      event: {
        routingKey: 'send.finished',
        body: {
          ...run,
          finishedAt: at(base, t + 5),
          instanceCount: 5,
          skipped: 0,
          outcomes: [{ target, sent: 5, failed: 0, attempts: 1, failures: [] }],
        },
      },
    });
  }
  return { runId, receiptId, studyInstanceUid, events };
}

/** A deterministic shuffle (seeded), so a failing order can be replayed. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

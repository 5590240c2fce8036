import { Type, type Static } from '@sinclair/typebox';
import { CompleteFlowDefinition, type FlowModel } from './flow-definition.js';
import { BucketName, ObjectKey, StringEnum } from './schema-parts.js';

const Uuid = Type.String({ format: 'uuid', maxLength: 36 });
const DateTime = Type.String({ format: 'date-time', maxLength: 64 });
const Member = Type.String({ minLength: 1, maxLength: 1024 });

/** Index of a model in the flow's `models` (0 = the first model). */
export const StepIndex = Type.Integer({ minimum: 0, maximum: 9999 });

/** Where an object lives in S3. */
export const ObjectLocation = Type.Object(
  { bucket: BucketName, key: ObjectKey },
  { additionalProperties: false },
);
export type ObjectLocation = Static<typeof ObjectLocation>;

/**
 * The input of the first model: the run's members of the receipt tar, laid out in folders by `tarSubdir`
 * (tag keywords; the index object holds each member's elements for that).
 */
export const ReceiptJobInput = Type.Object(
  {
    kind: Type.Literal('receipt'),
    bucket: BucketName,
    tarKey: ObjectKey,
    indexKey: ObjectKey,
    /** The receipt tar members the run takes (the rest of the tar is not the model's input). */
    members: Type.Array(Member, { minItems: 1, maxItems: 100_000 }),
    tarSubdir: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
  },
  { additionalProperties: false },
);
export type ReceiptJobInput = Static<typeof ReceiptJobInput>;

/** The input of a later model: the whole output tar of the step before. */
export const StepJobInput = Type.Object(
  {
    kind: Type.Literal('step'),
    /** The step whose output this is (the job's own step - 1). */
    step: StepIndex,
    bucket: BucketName,
    key: ObjectKey,
  },
  { additionalProperties: false },
);
export type StepJobInput = Static<typeof StepJobInput>;

/** What a job reads: the receipt (step 0) or the previous step's output. */
export const JobInput = Type.Union([ReceiptJobInput, StepJobInput]);
export type JobInput = Static<typeof JobInput>;

/**
 * `job.cpu` / `job.gpu`: run one model of a run. Carries all the consumer needs without a lookup. Published
 * at least once with the deterministic message id `<runId>:job:<step>` (jobMessageId): a consumer must recognise a repeat
 * (same message id) and never run it a second time. Message priority: the flow's for step 0, else 5.
 */
export const Job = Type.Object(
  {
    runId: Uuid,
    receiptId: Uuid,
    step: StepIndex,
    /** How many models the flow has; the last step is `stepCount - 1`. */
    stepCount: Type.Integer({ minimum: 1, maximum: 10_000 }),
    flowName: Type.String({ maxLength: 256 }),
    flowVersion: Type.String({ maxLength: 64 }),
    flowFile: Type.String({ minLength: 1, maxLength: 1024 }),
    flowHash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    /** The model to run, from the flow definition as it was when the run started, every default filled in. */
    model: CompleteFlowDefinition.properties.models.items,
    input: JobInput,
    /** Where the consumer writes the tar of everything the model wrote to its `output_dir`. */
    output: ObjectLocation,
    /** The message priority it was published with (0-5). */
    priority: Type.Integer({ minimum: 0, maximum: 5 }),
    dispatchedAt: DateTime,
  },
  { additionalProperties: false },
);
export type Job = Static<typeof Job>;

/** Optional facts about a container run, kept by the flow-tracker. */
const runFacts = {
  /** The container's exit code, when it ran to an end. */
  exitCode: Type.Optional(Type.Integer()),
  startedAt: Type.Optional(DateTime),
  finishedAt: Type.Optional(DateTime),
  /**
   * Where the end of the container's log is stored (the runs bucket, `<runId>/<step>/log.txt`). The log
   * itself never travels in a message: a model may print patient data, which stays in S3 and the tracker's
   * database.
   */
  log: Type.Optional(ObjectLocation),
  /** Only in messages of earlier versions, which carried the log itself; no longer published. */
  logExcerpt: Type.Optional(Type.String({ maxLength: 65_536 })),
  /** Which consumer ran it (host name, replica id). */
  worker: Type.Optional(Type.String({ maxLength: 256 })),
};

/**
 * `job.started`: a consumer created and started the container of step `step`. Informational (the tracker
 * shows it); a redelivered job publishes it again with the same message id `<runId>:job.started:<step>`.
 */
export const JobStarted = Type.Object(
  {
    runId: Uuid,
    step: StepIndex,
    startedAt: DateTime,
    /** The image the container runs. */
    image: Type.String({ maxLength: 1024 }),
    worker: Type.Optional(Type.String({ maxLength: 256 })),
    /** The GPU id of the slot that runs it, for GPU jobs. */
    gpu: Type.Optional(Type.String({ maxLength: 64 })),
    /** The image id the engine ran (`docker inspect` Id, `sha256:...`): what ran, whatever the tag says later. */
    imageId: Type.Optional(Type.String({ maxLength: 256 })),
    /** `name@sha256:...` per registry the image came from (`RepoDigests`); empty for an image built locally. */
    repoDigests: Type.Optional(Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 32 })),
  },
  { additionalProperties: false },
);
export type JobStarted = Static<typeof JobStarted>;

/** `job.finished`: the model of step `step` exited 0 and its output tar is stored at `output`. */
export const JobFinished = Type.Object(
  {
    runId: Uuid,
    step: StepIndex,
    output: ObjectLocation,
    ...runFacts,
  },
  { additionalProperties: false },
);
export type JobFinished = Static<typeof JobFinished>;

/** Why a job failed. */
export const JOB_FAILURE_REASONS = [
  /** It ran longer than the model's `timeout` and was stopped. */
  'timeout',
  /** The container exited with a code other than 0 (see `exitCode`). */
  'exit-code',
  /** The container used more memory than its limit and the kernel killed it. */
  'out-of-memory',
  /** The image could not be pulled or found. */
  'image',
  /** The input could not be read or unpacked. */
  'input',
  /** The output could not be packed or stored. */
  'output',
  /** Anything else (see `message`). */
  'error',
] as const;
export type JobFailureReason = (typeof JOB_FAILURE_REASONS)[number];

/** `job.failed`: the job of step `step` failed for good (the consumer does not try it again). */
export const JobFailed = Type.Object(
  {
    runId: Uuid,
    step: StepIndex,
    reason: StringEnum(JOB_FAILURE_REASONS),
    /** What happened, for people (no patient data). */
    message: Type.String({ maxLength: 4096 }),
    ...runFacts,
  },
  { additionalProperties: false },
);
export type JobFailed = Static<typeof JobFailed>;

/** The routing keys of jobs. */
export const JOB_ROUTING_KEYS = ['job.cpu', 'job.gpu'] as const;
export type JobRoutingKey = (typeof JOB_ROUTING_KEYS)[number];

/**
 * The work queue of each job routing key, declared by the scheduler (so no job is unroutable before a
 * consumer exists) and consumed by consumers with CPU or GPU slots.
 */
export const JOB_QUEUES: Readonly<Record<JobRoutingKey, string>> = {
  'job.cpu': 'jobs.cpu',
  'job.gpu': 'jobs.gpu',
};

/** Where a model's job goes: `job.gpu` when it asks for a GPU, else `job.cpu`. */
export function jobRoutingKey(model: Pick<FlowModel, 'gpu'>): JobRoutingKey {
  return model.gpu ? 'job.gpu' : 'job.cpu';
}

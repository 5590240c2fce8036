/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment --
   TypeORM declares EntitySchemaOptions as a class but documents (and reads) plain option objects. */
import { EntitySchema } from 'typeorm';

/** Run status codes, as DicomFlow users know them (DESIGN.md "Run status"). */
export const RUN_STATUS = {
  pending: 0,
  running: 1,
  finished: 2,
  sending: 3,
  sent: 4,
  failed: 400,
} as const;
export type RunStatusName = keyof typeof RUN_STATUS;
export type RunStatus = (typeof RUN_STATUS)[RunStatusName];

/** One row per run: the columns of the DicomFlow run table, rebuilt from the run's events. */
export interface RunRow {
  id: string;
  /** When the run started (flow.matched), else the earliest time any of its events names. */
  ts: Date;
  /** StudyInstanceUID(s) of the receipt, comma-separated when it held several studies. */
  uid: string;
  name: string;
  version: string;
  /** Empty unless PATIENT_COLUMN asks for initials or a pseudonym. */
  patient: string;
  priority: number | null;
  /** `AE@host` of the node that sent the study. */
  sender: string;
  /** `AE@host:port` of each target, comma-separated. */
  destinations: string;
  received: Date | null;
  dispatched: Date | null;
  finished: Date | null;
  sent: Date | null;
  status: RunStatus;
  failureReason: string | null;
  failureMessage: string | null;
  receiptId: string | null;
  flowFile: string;
  /** sha256 (hex) of the flow as loaded when the run started (flow.matched `flowHash`); '' until known. */
  flowHash: string;
  stepCount: number | null;
  updatedAt: Date;
}

/** Step (model) of a run: image, timings, exit code, capped log, worker. */
export interface StepRow {
  runId: string;
  step: number;
  state: 'dispatched' | 'running' | 'finished' | 'failed';
  image: string;
  queue: string;
  worker: string;
  gpu: string;
  /** The image id the engine ran (`sha256:...`); '' when the consumer did not say (older consumers). */
  imageId: string;
  /** `name@sha256:...` per registry the image came from; empty for a locally built image. */
  repoDigests: string[];
  dispatched: Date | null;
  started: Date | null;
  ended: Date | null;
  exitCode: number | null;
  log: string | null;
  failureReason: string | null;
  failureMessage: string | null;
}

/**
 * The latest retry of one target of a run (from send.retrying): which node, after which attempt, why, and
 * when the sender tries again. Kept after the send ended (the API shows it only while the run is sending).
 */
export interface SendRetryRow {
  runId: string;
  /** `AE@host:port`, as in `runs.destinations`. */
  target: string;
  /** `destination` or `return-to-sender`. */
  kind: string;
  attempt: number;
  maxAttempts: number;
  errorCode: string;
  errorMessage: string;
  retryingAt: Date;
  nextAttemptAt: Date;
}

/** Every event once (by message id): the source every row is rebuilt from. */
export interface EventRow {
  eventKey: string;
  routingKey: string;
  runId: string | null;
  receiptId: string | null;
  body: unknown;
  recordedAt: Date;
}

/** One completed group of received instances (from study.received). */
export interface ReceiptRow {
  receiptId: string;
  receivedAt: Date;
  callingAeTitle: string;
  callingHost: string;
  instanceCount: number;
  patient: string;
  studyUids: string;
}

/** What one receipt brought to one study. */
export interface StudyReceiptRow {
  studyInstanceUid: string;
  receiptId: string;
  receivedAt: Date;
  instanceCount: number;
  series: { seriesInstanceUid: string; modality: string; instanceCount: number }[];
}

/** A study over all its receipts; `revision` counts them, so it grows when more instances arrive later. */
export interface StudyRow {
  studyInstanceUid: string;
  revision: number;
  seriesCount: number;
  instanceCount: number;
  firstReceived: Date;
  lastReceived: Date;
}

/** One instance a receipt brought (from its index); a UID received again in another receipt has a row each. */
export interface ReceivedInstanceRow {
  receiptId: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopClassUid: string;
}

/** One instance a run's delivery got acknowledged by one destination (from the delivered manifest). */
export interface DeliveredInstanceRow {
  runId: string;
  sopInstanceUid: string;
  /** `AE@host:port` or the DICOMweb URL, as in `runs.destinations`. */
  destination: string;
  /** The resend that delivered it; '' for the run's own delivery. */
  resendId: string;
  /** The step whose output it is (the run's last: the sender delivers the last step's output). */
  step: number;
  deliveredAt: Date;
}

const timestamptz = { type: 'timestamptz', nullable: true } as const;

export const RunEntity = new EntitySchema<RunRow>({
  name: 'Run',
  tableName: 'runs',
  columns: {
    id: { type: 'uuid', primary: true },
    ts: { type: 'timestamptz' },
    uid: { type: 'text', default: '' },
    name: { type: 'text', default: '' },
    version: { type: 'text', default: '' },
    patient: { type: 'text', default: '' },
    priority: { type: 'integer', nullable: true },
    sender: { type: 'text', default: '' },
    destinations: { type: 'text', default: '' },
    received: timestamptz,
    dispatched: timestamptz,
    finished: timestamptz,
    sent: timestamptz,
    status: { type: 'integer', default: 0 },
    failureReason: { name: 'failure_reason', type: 'text', nullable: true },
    failureMessage: { name: 'failure_message', type: 'text', nullable: true },
    receiptId: { name: 'receipt_id', type: 'uuid', nullable: true },
    flowFile: { name: 'flow_file', type: 'text', default: '' },
    flowHash: { name: 'flow_hash', type: 'text', default: '' },
    stepCount: { name: 'step_count', type: 'integer', nullable: true },
    updatedAt: { name: 'updated_at', type: 'timestamptz' },
  },
});

export const StepEntity = new EntitySchema<StepRow>({
  name: 'Step',
  tableName: 'steps',
  columns: {
    runId: { name: 'run_id', type: 'uuid', primary: true },
    step: { type: 'integer', primary: true },
    state: { type: 'text' },
    image: { type: 'text', default: '' },
    queue: { type: 'text', default: '' },
    worker: { type: 'text', default: '' },
    gpu: { type: 'text', default: '' },
    imageId: { name: 'image_id', type: 'text', default: '' },
    repoDigests: { name: 'repo_digests', type: 'text', array: true, default: '{}' },
    dispatched: timestamptz,
    started: timestamptz,
    ended: timestamptz,
    exitCode: { name: 'exit_code', type: 'integer', nullable: true },
    log: { type: 'text', nullable: true },
    failureReason: { name: 'failure_reason', type: 'text', nullable: true },
    failureMessage: { name: 'failure_message', type: 'text', nullable: true },
  },
});

export const SendRetryEntity = new EntitySchema<SendRetryRow>({
  name: 'SendRetry',
  tableName: 'send_retries',
  columns: {
    runId: { name: 'run_id', type: 'uuid', primary: true },
    target: { type: 'text', primary: true },
    kind: { type: 'text' },
    attempt: { type: 'integer' },
    maxAttempts: { name: 'max_attempts', type: 'integer' },
    errorCode: { name: 'error_code', type: 'text' },
    errorMessage: { name: 'error_message', type: 'text' },
    retryingAt: { name: 'retrying_at', type: 'timestamptz' },
    nextAttemptAt: { name: 'next_attempt_at', type: 'timestamptz' },
  },
});

export const EventEntity = new EntitySchema<EventRow>({
  name: 'Event',
  tableName: 'events',
  columns: {
    eventKey: { name: 'event_key', type: 'text', primary: true },
    routingKey: { name: 'routing_key', type: 'text' },
    runId: { name: 'run_id', type: 'uuid', nullable: true },
    receiptId: { name: 'receipt_id', type: 'uuid', nullable: true },
    body: { type: 'jsonb' },
    recordedAt: { name: 'recorded_at', type: 'timestamptz' },
  },
});

export const ReceiptEntity = new EntitySchema<ReceiptRow>({
  name: 'Receipt',
  tableName: 'receipts',
  columns: {
    receiptId: { name: 'receipt_id', type: 'uuid', primary: true },
    receivedAt: { name: 'received_at', type: 'timestamptz' },
    callingAeTitle: { name: 'calling_ae_title', type: 'text' },
    callingHost: { name: 'calling_host', type: 'text' },
    instanceCount: { name: 'instance_count', type: 'integer' },
    patient: { type: 'text', default: '' },
    studyUids: { name: 'study_uids', type: 'text' },
  },
});

export const StudyReceiptEntity = new EntitySchema<StudyReceiptRow>({
  name: 'StudyReceipt',
  tableName: 'study_receipts',
  columns: {
    studyInstanceUid: { name: 'study_instance_uid', type: 'text', primary: true },
    receiptId: { name: 'receipt_id', type: 'uuid', primary: true },
    receivedAt: { name: 'received_at', type: 'timestamptz' },
    instanceCount: { name: 'instance_count', type: 'integer' },
    series: { type: 'jsonb' },
  },
});

export const StudyEntity = new EntitySchema<StudyRow>({
  name: 'Study',
  tableName: 'studies',
  columns: {
    studyInstanceUid: { name: 'study_instance_uid', type: 'text', primary: true },
    revision: { type: 'integer' },
    seriesCount: { name: 'series_count', type: 'integer' },
    instanceCount: { name: 'instance_count', type: 'integer' },
    firstReceived: { name: 'first_received', type: 'timestamptz' },
    lastReceived: { name: 'last_received', type: 'timestamptz' },
  },
});

export const ReceivedInstanceEntity = new EntitySchema<ReceivedInstanceRow>({
  name: 'ReceivedInstance',
  tableName: 'received_instances',
  columns: {
    receiptId: { name: 'receipt_id', type: 'uuid', primary: true },
    sopInstanceUid: { name: 'sop_instance_uid', type: 'text', primary: true },
    studyInstanceUid: { name: 'study_instance_uid', type: 'text' },
    seriesInstanceUid: { name: 'series_instance_uid', type: 'text' },
    sopClassUid: { name: 'sop_class_uid', type: 'text' },
  },
});

export const DeliveredInstanceEntity = new EntitySchema<DeliveredInstanceRow>({
  name: 'DeliveredInstance',
  tableName: 'delivered_instances',
  columns: {
    runId: { name: 'run_id', type: 'uuid', primary: true },
    sopInstanceUid: { name: 'sop_instance_uid', type: 'text', primary: true },
    destination: { type: 'text', primary: true },
    resendId: { name: 'resend_id', type: 'text', primary: true },
    step: { type: 'integer' },
    deliveredAt: { name: 'delivered_at', type: 'timestamptz' },
  },
});

/** Every entity of the tracker, for the data source. */
export const TRACKER_ENTITIES = [
  RunEntity,
  StepEntity,
  SendRetryEntity,
  EventEntity,
  ReceiptEntity,
  StudyReceiptEntity,
  StudyEntity,
  ReceivedInstanceEntity,
  DeliveredInstanceEntity,
];

import { Type, type Static } from '@sinclair/typebox';
import { Resend } from './recovery.js';
import { ObjectLocation } from './jobs.js';
import { DicomWebUrl } from './destination.js';
import { AeTitle, HostName, StringEnum } from './schema-parts.js';

const Uuid = Type.String({ format: 'uuid', maxLength: 36 });
const DateTime = Type.String({ format: 'date-time', maxLength: 64 });

/**
 * What identifies a run in every send event; `resend` when the delivery is an operator's resend (the
 * `resend` of its `flow.finished`), absent for the run's own delivery.
 */
const sendRun = {
  runId: Uuid,
  receiptId: Uuid,
  flowName: Type.String({ maxLength: 256 }),
  flowVersion: Type.String({ maxLength: 64 }),
  flowFile: Type.String({ minLength: 1, maxLength: 1024 }),
  resend: Type.Optional(Resend),
};

/** Where results go: a flow destination, or the sender of the study on one of `return_to_sender_on_ports`. */
export const SEND_TARGET_KINDS = ['destination', 'return-to-sender'] as const;
export type SendTargetKind = (typeof SEND_TARGET_KINDS)[number];

/** One DICOM node the sender delivers a run's results to (C-STORE). */
export const DimseSendTarget = Type.Object(
  {
    kind: StringEnum(SEND_TARGET_KINDS),
    host: HostName,
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    aeTitle: AeTitle,
    /** DICOM TLS (the flow destination's `tls`); absent = plain TCP. */
    tls: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type DimseSendTarget = Static<typeof DimseSendTarget>;

/** One DICOMweb server (a flow destination) the sender delivers a run's results to (STOW-RS). */
export const DicomWebSendTarget = Type.Object(
  {
    kind: Type.Literal('destination'),
    /** The destination's base URL; its token never travels in send events. */
    url: DicomWebUrl,
  },
  { additionalProperties: false },
);
export type DicomWebSendTarget = Static<typeof DicomWebSendTarget>;

/** Where the sender delivers a run's results: a DICOM node or a DICOMweb server. */
export const SendTarget = Type.Union([DimseSendTarget, DicomWebSendTarget]);
export type SendTarget = Static<typeof SendTarget>;

/** True for a DICOMweb target (`url`). */
export function isDicomWebTarget(target: SendTarget): target is DicomWebSendTarget {
  return 'url' in target;
}

/** A target for people and logs: `AE@host:port`, or the DICOMweb URL. */
export function sendTargetText(target: SendTarget): string {
  return isDicomWebTarget(target) ? target.url : `${target.aeTitle}@${target.host}:${target.port}`;
}

/** Why delivery to a target ended without every instance acknowledged. */
export const SEND_FAILURE_REASONS = [
  /**
   * The association was rejected for good (called AE not recognised, permanent rejection), or a DICOMweb
   * server refused the request for good (HTTP 4xx such as 401, 403, 404).
   */
  'rejected',
  /** The node could not be reached, or kept failing transiently until the retries ran out. */
  'unreachable',
  /**
   * Some instances were refused by the node (e.g. SOP class or transfer syntax not accepted; a DICOMweb
   * server's FailedSOPSequence).
   */
  'instances-refused',
  /** Anything else (see `message`). */
  'error',
] as const;
export type SendFailureReason = (typeof SEND_FAILURE_REASONS)[number];

/** One instance a target did not accept (capped list; counts are exact). */
export const SendInstanceFailure = Type.Object(
  {
    /** Tar member name of the file in the output tar. */
    member: Type.String({ maxLength: 1024 }),
    sopInstanceUid: Type.Optional(Type.String({ maxLength: 64 })),
    /** The DICOM status the node answered (0xA700 ...; a DICOMweb FailureReason), when it answered one. */
    status: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffff })),
    message: Type.String({ maxLength: 1024 }),
  },
  { additionalProperties: false },
);
export type SendInstanceFailure = Static<typeof SendInstanceFailure>;

/** The outcome of delivering a run's results to one target. */
export const SendTargetOutcome = Type.Object(
  {
    target: SendTarget,
    /** Instances the node acknowledged with success or warning (counting earlier attempts of the same run). */
    sent: Type.Integer({ minimum: 0 }),
    /** Instances the node did not acknowledge. */
    failed: Type.Integer({ minimum: 0 }),
    /** Attempts made (rounds of associations, or of STOW-RS requests), the first try and each retry. */
    attempts: Type.Integer({ minimum: 0 }),
    reason: Type.Optional(StringEnum(SEND_FAILURE_REASONS)),
    message: Type.Optional(Type.String({ maxLength: 4096 })),
    failures: Type.Array(SendInstanceFailure, { maxItems: 100 }),
  },
  { additionalProperties: false },
);
export type SendTargetOutcome = Static<typeof SendTargetOutcome>;

/** Tar members of the output that are not DICOM files and were not sent, with why (capped list). */
export const SkippedMembers = Type.Array(
  Type.Object(
    { member: Type.String({ maxLength: 1024 }), reason: Type.String({ maxLength: 1024 }) },
    { additionalProperties: false },
  ),
  { maxItems: 100 },
);
export type SkippedMembers = Static<typeof SkippedMembers>;

/** `send.started`: the sender began delivering a run's results. Message id `<runId>:send.started`. */
export const SendStarted = Type.Object(
  {
    ...sendRun,
    startedAt: DateTime,
    targets: Type.Array(SendTarget),
    /** DICOM files found in the output tar (non-DICOM files are skipped and counted in `skipped`). */
    instanceCount: Type.Integer({ minimum: 0 }),
    skipped: Type.Integer({ minimum: 0 }),
    skippedMembers: Type.Optional(SkippedMembers),
  },
  { additionalProperties: false },
);
export type SendStarted = Static<typeof SendStarted>;

/** Why an attempt at a target failed, as the sender's `retrying target` log line says it. */
export const SendRetryError = Type.Object(
  {
    /**
     * What kind of failure: the system error code when the connection failed (`ECONNREFUSED`,
     * `EHOSTUNREACH`, `ENOTFOUND` ...), the DICOM status when the node answered one that asks to try again
     * (`0xA700`), the HTTP status a DICOMweb server answered that asks to try again (`HTTP 503`), else
     * how the association or request ended (`timeout`, `aborted`, `rejected`, `connect`).
     */
    code: Type.String({ minLength: 1, maxLength: 64 }),
    /** The failure in words (no patient data). */
    message: Type.String({ maxLength: 1024 }),
  },
  { additionalProperties: false },
);
export type SendRetryError = Static<typeof SendRetryError>;

/**
 * `send.retrying`: an attempt at one target failed transiently and the sender tries again at
 * `nextAttemptAt`. One per retry and target, so a target that is down shows why and until when while the
 * run is sending. A progress note, not a result: its message id is a new UUID each time (a redelivered
 * `flow.finished` starts counting attempts again, and its retries must not be taken for repeats of the
 * earlier ones); the latest one per target (by `retryingAt`) is what counts.
 */
export const SendRetrying = Type.Object(
  {
    ...sendRun,
    retryingAt: DateTime,
    target: SendTarget,
    /** The attempt that failed (1: the first try). */
    attempt: Type.Integer({ minimum: 1 }),
    /** Attempts the target gets before it counts as failed (`SEND_MAX_ATTEMPTS`). */
    maxAttempts: Type.Integer({ minimum: 1 }),
    nextAttemptAt: DateTime,
    error: SendRetryError,
  },
  { additionalProperties: false },
);
export type SendRetrying = Static<typeof SendRetrying>;

/** `send.finished`: every target acknowledged every instance. Message id `<runId>:send.finished`. */
export const SendFinished = Type.Object(
  {
    ...sendRun,
    finishedAt: DateTime,
    instanceCount: Type.Integer({ minimum: 0 }),
    skipped: Type.Integer({ minimum: 0 }),
    skippedMembers: Type.Optional(SkippedMembers),
    outcomes: Type.Array(SendTargetOutcome),
    /**
     * Where the list of delivered instances is stored (JSON Lines, one `{sopInstanceUid, target}` per
     * instance and target: delivered-manifest.ts), for the tracker's provenance; never listed in the message.
     */
    delivered: Type.Optional(ObjectLocation),
  },
  { additionalProperties: false },
);
export type SendFinished = Static<typeof SendFinished>;

/** `send.failed`: at least one target did not get every instance. Message id `<runId>:send.failed`. */
export const SendFailed = Type.Object(
  {
    ...sendRun,
    failedAt: DateTime,
    instanceCount: Type.Integer({ minimum: 0 }),
    skipped: Type.Integer({ minimum: 0 }),
    skippedMembers: Type.Optional(SkippedMembers),
    outcomes: Type.Array(SendTargetOutcome),
    /** Summary for people (no patient data). */
    message: Type.String({ maxLength: 4096 }),
  },
  { additionalProperties: false },
);
export type SendFailed = Static<typeof SendFailed>;

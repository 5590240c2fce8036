import { finished } from 'node:stream/promises';
import { DicomParseError, MissingTagError, type InstanceInfo } from '@dicomflow/dicom';
import type { Logger } from '@dicomflow/runtime';
import { TooManyOpenGroupsError, type Grouper, type InstanceOrigin } from '../spool/grouper.js';
import { IndexLineTooLargeError } from '../spool/spool.js';
import { StoreStatus, type StoreStatusCode } from './dimse.js';
import { MAX_UID_LENGTH } from './p-data-receiver.js';
import type { SpoolWriteStream } from './spool-write-stream.js';

/*
 * The steps every received instance goes through, whether it came by C-STORE or by STOW-RS: its spool file
 * written and inspected, then filed in its group. A refusal carries a C-STORE status; STOW-RS answers the
 * same numbers as FailureReason (PS3.18 I.2.2 takes them from PS3.4).
 */

/** Why an instance is not stored: a status and a reason for the log and the sender. */
export interface Refusal {
  readonly status: StoreStatusCode;
  readonly reason: string;
}

/** An instance whose spool file is written: what it is, or why it cannot be stored. */
export type Received =
  | { readonly ok: true; readonly info: InstanceInfo; readonly path: string }
  | ({ readonly ok: false; readonly path: string } & Refusal);

/**
 * Waits until `writable` finished writing its spool file, then reads what the instance is. A dataset
 * that does not frame is refused as not understood, one without its identifying UIDs as not matching its
 * SOP class, and a spool that cannot be written or read as out of resources.
 */
export async function inspectWritten(writable: SpoolWriteStream, log: Logger): Promise<Received> {
  const path = writable.path;
  try {
    await finished(writable);
  } catch (err) {
    log.error({ err }, 'writing an instance to the spool failed');
    return { ok: false, status: StoreStatus.OutOfResources, reason: 'spool write failed', path };
  }
  if (writable.oversize) {
    return {
      ok: false,
      status: StoreStatus.OutOfResources,
      reason: `instance larger than MAX_INSTANCE_BYTES (${writable.maxDatasetBytes} bytes)`,
      path,
    };
  }
  try {
    return { ok: true, info: await writable.inspect(), path };
  } catch (err) {
    if (err instanceof MissingTagError) {
      return { ok: false, status: StoreStatus.DataSetDoesNotMatchSopClass, reason: err.message, path };
    }
    if (err instanceof DicomParseError) {
      return { ok: false, status: StoreStatus.CannotUnderstand, reason: err.message, path };
    }
    log.error({ err }, 'reading a received instance failed');
    return { ok: false, status: StoreStatus.OutOfResources, reason: 'spool read failed', path };
  }
}

/** The refusal of an instance whose SOP Instance UID cannot be one, if it cannot. */
export function sopInstanceUidProblem(info: InstanceInfo): Refusal | undefined {
  // Not a UID (PS3.5 6.2); tar member names and spool file names rely on the bound.
  if (info.sopInstanceUid.length <= MAX_UID_LENGTH) return undefined;
  return {
    status: StoreStatus.DataSetDoesNotMatchSopClass,
    reason: `SOP Instance UID longer than ${MAX_UID_LENGTH} characters`,
  };
}

/** Where received instances are filed: the {@link Grouper}, or in a receiver worker its IPC stand-in. */
export type InstanceFiler = Pick<Grouper, 'admit' | 'endAssociation'>;

/**
 * Files an inspected instance in its group ({@link Grouper.admit}); resolves with undefined once it is
 * safe to acknowledge, or with the refusal when the spool cannot take it.
 */
export async function fileInGroup(
  grouper: InstanceFiler,
  origin: InstanceOrigin,
  info: InstanceInfo,
  path: string,
  log: Logger,
): Promise<Refusal | undefined> {
  try {
    await grouper.admit(origin, info, path);
    return undefined;
  } catch (err) {
    if (err instanceof IndexLineTooLargeError)
      return { status: StoreStatus.OutOfResources, reason: err.message };
    if (err instanceof TooManyOpenGroupsError) {
      log.error({ limit: err.limit }, 'too many open groups; instance refused until some complete');
      return { status: StoreStatus.OutOfResources, reason: 'too many open groups' };
    }
    log.error({ err }, 'filing an instance in the spool failed');
    return { status: StoreStatus.OutOfResources, reason: 'spool unavailable' };
  }
}

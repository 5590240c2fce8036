import type { Writable } from 'node:stream';
import {
  INSTANCE_HEAD_MAX_BYTES,
  NotAnInstanceError,
  parseInstanceHead,
  type InstanceFile,
  type InstanceInfo,
} from '@dicomflow/dicom';
import type { Logger } from '@dicomflow/runtime';
import { ContextResult, type AssociationPolicy } from '../dimse/association-policy.js';
import { inspectWritten, sopInstanceUidProblem } from '../dimse/instance-filing.js';
import { part10Prefix } from '../dimse/part10-prefix.js';
import { SpoolWriteStream } from '../dimse/spool-write-stream.js';
import type { Spool } from '../spool/spool.js';
import { parseMediaType } from './media-type.js';
import type { MultipartPart } from './multipart-reader.js';
import { FailureReason, type FailedInstance } from './stow-response.js';

/** What every part of a STOW-RS request is received with. */
export interface StowPartContext {
  readonly spool: Spool;
  /** Which SOP classes and transfer syntaxes are taken: the same rules as for C-STORE. */
  readonly policy: AssociationPolicy;
  readonly fsync: boolean;
  readonly maxInstanceBytes: number;
  /** Written as Source Application Entity Title (0002,0016) of the stored file. */
  readonly sourceAeTitle: string;
  /** The Study Instance UID of the request's path (`/studies/{uid}`), if any. */
  readonly expectedStudy: string | undefined;
  readonly log: Logger;
}

/** A part written to the spool and inspected (not yet filed in a group), or why it is not stored. */
export type PartOutcome =
  | { readonly ok: true; readonly info: InstanceInfo; readonly path: string }
  | ({ readonly ok: false } & FailedInstance);

// Where the file meta group's length is (PS3.10 7.1): after the preamble, DICM and the (0002,0000) header.
const GROUP_LENGTH_AT = 128 + 4 + 8;
const META_FIRST_ELEMENT_AT = 128 + 4;

/**
 * Receives one part of a STOW-RS request, a Part-10 file: its meta group is read from the first bytes, then
 * the dataset streams into a spool file behind a meta group of our own, exactly as a C-STORE dataset does
 * (checked as it streams, fsync'd, inspected the same way). The file is left in the spool's incoming
 * folder when the instance passes every check; otherwise it is removed and the outcome says why. Throws
 * (after removing the file) only when the body itself fails: broken multipart, a request over its limit, a
 * connection gone.
 */
export async function receivePart(part: MultipartPart, ctx: StowPartContext): Promise<PartOutcome> {
  const contentType = part.headers.get('content-type');
  if (contentType !== undefined && parseMediaType(contentType)?.type !== 'application/dicom')
    return failed(undefined, FailureReason.CannotUnderstand, 'the part is not application/dicom');
  const chunks = part.body[Symbol.asyncIterator]();
  const head = await readHead(chunks);
  if (head.length > ctx.maxInstanceBytes) return tooLarge(undefined, ctx);
  let meta: InstanceFile;
  try {
    // Read from bytes in memory: the path and size it records are not used.
    meta = parseInstanceHead('', head.length, head);
  } catch (err) {
    if (err instanceof NotAnInstanceError)
      return failed(undefined, FailureReason.CannotUnderstand, err.message);
    throw err;
  }
  const decision = ctx.policy.reviewContext(meta.sopClassUid, [meta.transferSyntaxUid]);
  if (!decision.accept) {
    return decision.result === ContextResult.TransferSyntaxesNotSupported
      ? failed(meta, FailureReason.TransferSyntaxNotSupported, 'transfer syntax not supported')
      : failed(meta, FailureReason.SopClassNotSupported, 'SOP class not supported');
  }
  const path = ctx.spool.newIncomingPath();
  const stream = new SpoolWriteStream(
    path,
    // The sender's preamble is not kept (it may hold anything): the stored file starts as a C-STORE's does.
    part10Prefix({
      sopClassUid: meta.sopClassUid,
      sopInstanceUid: meta.sopInstanceUid,
      transferSyntaxUid: meta.transferSyntaxUid,
      sourceAeTitle: ctx.sourceAeTitle,
    }),
    meta.transferSyntaxUid,
    ctx.fsync,
    undefined,
    false,
    ctx.spool.readOptions,
  );
  stream.on('error', () => undefined); // reported through inspectWritten
  const discard = (): Promise<void> => ctx.spool.discard(path).catch(() => undefined);
  try {
    let size = head.length;
    await write(stream, head.subarray(meta.datasetOffset));
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
      size += next.value.length;
      if (size > ctx.maxInstanceBytes) {
        stream.destroy();
        await discard();
        return tooLarge(meta, ctx);
      }
      // A failed spool write destroys the stream; the rest of the part is skipped, the failure reported below.
      if (!stream.destroyed) await write(stream, next.value);
    }
    if (!stream.destroyed) stream.end();
  } catch (err) {
    stream.destroy();
    await discard();
    throw err;
  }
  const received = await inspectWritten(stream, ctx.log);
  if (!received.ok) {
    await discard();
    return failed(meta, received.status, received.reason);
  }
  const problem = instanceProblem(meta, received.info, ctx.expectedStudy);
  if (problem) {
    await discard();
    return failed(received.info, problem.status, problem.reason);
  }
  return received;
}

/** Why an inspected instance is not stored, if it is not. */
function instanceProblem(
  meta: InstanceFile,
  info: InstanceInfo,
  expectedStudy: string | undefined,
): { status: number; reason: string } | undefined {
  const badUid = sopInstanceUidProblem(info);
  if (badUid) return badUid;
  // As a C-STORE dataset must match its command: the spool's meta group is made from these.
  if (meta.sopInstanceUid !== info.sopInstanceUid || meta.sopClassUid !== info.sopClassUid) {
    return {
      status: FailureReason.DataSetDoesNotMatchSopClass,
      reason: 'the file meta group names another SOP class or instance than the dataset',
    };
  }
  if (expectedStudy !== undefined && info.studyInstanceUid !== expectedStudy) {
    return {
      status: FailureReason.StudyInstanceUidMismatch,
      reason: 'the StudyInstanceUID does not match the study of the request',
    };
  }
  return undefined;
}

/**
 * The first bytes of a part: the whole file meta group (its length is read from (0002,0000)), at most
 * INSTANCE_HEAD_MAX_BYTES, fewer when the part ends first. Chunks are joined twice at most.
 */
async function readHead(chunks: AsyncIterator<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let length = 0;
  let wanted = GROUP_LENGTH_AT + 4;
  let lengthKnown = false;
  while (length < wanted) {
    const next = await chunks.next();
    if (next.done) break;
    pieces.push(next.value);
    length += next.value.length;
    if (!lengthKnown && length >= wanted) {
      lengthKnown = true;
      const start = Buffer.concat(pieces);
      const groupLength =
        start.readUInt16LE(META_FIRST_ELEMENT_AT) === 0x0002 &&
        start.readUInt16LE(META_FIRST_ELEMENT_AT + 2) === 0
          ? start.readUInt32LE(GROUP_LENGTH_AT)
          : Infinity; // no group length: parseInstanceHead walks what it gets
      wanted = Math.min(GROUP_LENGTH_AT + 4 + groupLength, INSTANCE_HEAD_MAX_BYTES);
    }
  }
  return pieces.length === 1 && pieces[0] ? pieces[0] : Buffer.concat(pieces);
}

/** Writes `chunk` and waits while the stream holds more than it wants (or until it is destroyed). */
async function write(stream: Writable, chunk: Buffer): Promise<void> {
  if (chunk.length === 0 || stream.destroyed || stream.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

function tooLarge(meta: InstanceFile | undefined, ctx: StowPartContext): PartOutcome {
  return failed(
    meta,
    FailureReason.OutOfResources,
    `instance larger than STOW_MAX_INSTANCE_BYTES (${ctx.maxInstanceBytes})`,
  );
}

function failed(
  uids: Pick<InstanceInfo, 'sopClassUid' | 'sopInstanceUid'> | undefined,
  failureReason: number,
  comment: string,
): PartOutcome {
  return {
    ok: false,
    sopClassUid: uids?.sopClassUid ?? '',
    sopInstanceUid: uids?.sopInstanceUid ?? '',
    failureReason,
    comment,
  };
}

import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { DicomJsonDataset } from '@dicomflow/dicom';
import { activeTraceContext, HttpError, type Logger } from '@dicomflow/runtime';
import type { AssociationPolicy } from '../dimse/association-policy.js';
import { fileInGroup } from '../dimse/instance-filing.js';
import type { ReceiverMetrics } from '../metrics.js';
import type { Grouper, InstanceOrigin } from '../spool/grouper.js';
import type { Spool } from '../spool/spool.js';
import { MultipartError, MultipartReader } from './multipart-reader.js';
import { receivePart } from './stow-instance.js';
import {
  storeInstancesResponse,
  storeInstancesStatus,
  type FailedInstance,
  type InstanceReference,
} from './stow-response.js';

/** What every STOW-RS request is served with. */
export interface StowContext {
  readonly spool: Spool;
  readonly grouper: Grouper;
  readonly policy: AssociationPolicy;
  readonly metrics: ReceiverMetrics;
  readonly logger: Logger;
  readonly fsync: boolean;
  readonly maxRequestBytes: number;
  readonly maxInstanceBytes: number;
  /** Recorded as the calling AE title of what arrives over STOW-RS. */
  readonly callingAeTitle: string;
  /** Recorded as the called AE title (the receiver's AE_TITLE). */
  readonly calledAeTitle: string;
}

/** One request: its body, the boundary of its parts and the study of its path, if any. */
export interface StowRequest {
  readonly body: Readable;
  readonly boundary: string;
  readonly expectedStudy: string | undefined;
  readonly remoteAddress: string;
}

/** The answer to a request whose body was read whole. */
export interface StowAnswer {
  readonly status: 200 | 202 | 409;
  readonly body: DicomJsonDataset;
}

/** The request body could not be read to its end (the client went away, the connection broke). */
class BodyReadError extends Error {
  override readonly name = 'BodyReadError';
}

/**
 * Stores the instances of one STOW-RS request. Each part streams into the spool and is filed in a group as
 * soon as it is whole and checked, with one origin per request (so GROUPING=association makes one receipt
 * of it); the answer is made once every stored instance is on disk, and the request's group is handed over
 * before this returns. Throws an HttpError when the body itself fails (400 broken multipart or connection,
 * 413 over STOW_MAX_REQUEST_BYTES); what was stored before that is kept, as an aborted association keeps
 * what it received.
 */
export async function storeInstances(ctx: StowContext, request: StowRequest): Promise<StowAnswer> {
  const id = randomUUID();
  const log = ctx.logger.child({ stowRequestId: id, remote: request.remoteAddress });
  const origin: InstanceOrigin = {
    associationId: id,
    callingAeTitle: ctx.callingAeTitle,
    calledAeTitle: ctx.calledAeTitle,
    callingHost: request.remoteAddress,
    trace: activeTraceContext(),
  };
  const stored: InstanceReference[] = [];
  const failed: FailedInstance[] = [];
  const reader = new MultipartReader(limited(request.body, ctx.maxRequestBytes), request.boundary);
  const partContext = {
    spool: ctx.spool,
    policy: ctx.policy,
    fsync: ctx.fsync,
    maxInstanceBytes: ctx.maxInstanceBytes,
    sourceAeTitle: ctx.callingAeTitle,
    expectedStudy: request.expectedStudy,
    log,
  };
  const noteFailure = (failure: FailedInstance): void => {
    failed.push(failure);
    const reason = failure.failureReason.toString(16).padStart(4, '0');
    ctx.metrics.stowInstancesFailed.inc({ reason });
    log.warn({ failureReason: `0x${reason}`, reason: failure.comment }, 'STOW-RS instance not stored');
  };
  try {
    for (let part = await reader.next(); part; part = await reader.next()) {
      const outcome = await receivePart(part, partContext);
      if (!outcome.ok) {
        noteFailure(outcome);
        continue;
      }
      // Only the UIDs are kept for the answer: a request may carry thousands of instances.
      const uids = { sopClassUid: outcome.info.sopClassUid, sopInstanceUid: outcome.info.sopInstanceUid };
      const refusal = await fileInGroup(ctx.grouper, origin, outcome.info, outcome.path, log);
      if (refusal) {
        await ctx.spool.discard(outcome.path).catch(() => undefined);
        noteFailure({ ...uids, failureReason: refusal.status, comment: refusal.reason });
        continue;
      }
      stored.push(uids);
      ctx.metrics.stowInstancesStored.inc();
    }
  } catch (err) {
    throw requestFailure(err, stored.length);
  } finally {
    await ctx.grouper.endAssociation(id).catch((err: unknown) => {
      log.error({ err }, 'sealing the request group failed; the spool keeps it for the next start');
    });
  }
  if (stored.length + failed.length === 0) throw new HttpError(400, 'the request holds no instance');
  const status = storeInstancesStatus(stored.length, failed.length);
  log.info({ stored: stored.length, failed: failed.length, status }, 'STOW-RS request answered');
  return { status, body: storeInstancesResponse(stored, failed) };
}

/**
 * The body's chunks, up to `maxBytes` (then an HttpError 413). The request stream is not destroyed when
 * reading stops early, so that the answer can still be sent on its connection.
 */
async function* limited(body: Readable, maxBytes: number): AsyncGenerator<Buffer, void, undefined> {
  let total = 0;
  const chunks = body.iterator({ destroyOnReturn: false })[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<unknown>;
    try {
      next = await chunks.next();
    } catch (err) {
      throw new BodyReadError((err as Error).message, { cause: err });
    }
    if (next.done) return;
    const chunk = next.value as Buffer;
    total += chunk.length;
    if (total > maxBytes)
      throw new HttpError(413, `the request body is larger than STOW_MAX_REQUEST_BYTES (${maxBytes})`);
    yield chunk;
  }
}

/** The HTTP error of a request whose body failed after `stored` instances were stored. */
function requestFailure(err: unknown, stored: number): unknown {
  const kept = stored > 0 ? ` (the ${stored} instance(s) stored before it are kept)` : '';
  if (err instanceof HttpError) return new HttpError(err.statusCode, `${err.message}${kept}`);
  if (err instanceof MultipartError)
    return new HttpError(400, `malformed multipart body: ${err.message}${kept}`, { cause: err });
  if (err instanceof BodyReadError)
    return new HttpError(400, `the request body broke off: ${err.message}${kept}`, { cause: err });
  return err;
}

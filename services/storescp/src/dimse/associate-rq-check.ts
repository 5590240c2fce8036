import { PresentationReason, RejectResult, RejectSource } from './association-policy.js';
import { AbortReason, abortPdu, associateRjPdu, type AbortReasonCode } from './upper-layer-pdus.js';
import { PDU_HEADER_LENGTH } from './pdu-framer.js';

/**
 * Longest A-ASSOCIATE-RQ accepted, header included. A real one is a few KiB (dcmtk's storescu proposing
 * 120 SOP classes with 3 transfer syntaxes each: ~15 KiB); this leaves room for 128 contexts with a long
 * list of transfer syntaxes each, and bounds the library's parse of it, which is super-linear in the
 * number of contexts, transfer syntaxes and role items (80k contexts blocked the event loop for 15 s).
 */
export const MAX_ASSOCIATE_RQ_LENGTH = 128 * 1024;
/** Odd IDs 1-255 (PS3.8 9.3.2.2): no association can have more. */
export const MAX_PRESENTATION_CONTEXTS = 128;
/** Transfer syntaxes proposed for one presentation context; real senders propose a handful. */
export const MAX_TRANSFER_SYNTAXES_PER_CONTEXT = 32;

/** Fixed fields after the PDU header: version, reserved, called and calling AE titles, reserved. */
const FIXED_FIELDS_LENGTH = 68;
const ITEM_HEADER_LENGTH = 4;
/** A-ASSOCIATE-RJ reason for source "service provider, ACSE related" (PS3.8 9.3.4). */
const AcseReason = { ProtocolVersionNotSupported: 2 } as const;

const ItemType = {
  ApplicationContext: 0x10,
  PresentationContext: 0x20,
  AbstractSyntax: 0x30,
  TransferSyntax: 0x40,
  UserInformation: 0x50,
} as const;

/** User information sub-items whose value the library reads with a fixed layout (PS3.7 D.3.3). */
const UserItem = { MaxLength: 0x51, AsyncOps: 0x53, RoleSelection: 0x54, UserIdentity: 0x58 } as const;

/** An A-ASSOCIATE-RQ refused: answer `answer` (an A-ASSOCIATE-RJ or A-ABORT) and close. */
export interface AssociateRqRefusal {
  readonly ok: false;
  readonly kind: 'reject' | 'abort';
  readonly answer: Buffer;
  /** For the log. */
  readonly why: string;
}

/** What to do with an A-ASSOCIATE-RQ: let the library parse it, or refuse it. */
export type AssociateRqVerdict = { readonly ok: true } | AssociateRqRefusal;

/** Raised inside the check for a structural problem; becomes an A-ABORT. */
class MalformedRequestError extends Error {
  constructor(
    message: string,
    readonly reason: AbortReasonCode = AbortReason.InvalidPduParameterValue,
  ) {
    super(message);
    this.name = 'MalformedRequestError';
  }
}

/** The A-ASSOCIATE-RJ for a request beyond our limits: permanent (asking again will not help). */
export function limitRejection(why: string): AssociateRqRefusal {
  return {
    ok: false,
    kind: 'reject',
    why,
    answer: associateRjPdu(
      RejectResult.Permanent,
      RejectSource.ServiceProviderPresentation,
      PresentationReason.LocalLimitExceeded,
    ),
  };
}

/**
 * Checks a whole A-ASSOCIATE-RQ PDU (header included) before dcmjs-dimse parses it, in one linear pass.
 * The library trusts every length and ID it reads: two contexts with one ID, or an ID above 127 contexts,
 * are renumbered past 255 and writing the A-ASSOCIATE-AC then throws out of the event loop; unknown items
 * and sub-items whose length disagrees with their fields desynchronise its reader. So a request is let
 * through only when every item frames exactly, its presentation context IDs are odd, 1-255 and distinct,
 * each context has one abstract syntax first and a bounded number of transfer syntaxes, and it is within
 * {@link MAX_ASSOCIATE_RQ_LENGTH}. Limits exceeded get an A-ASSOCIATE-RJ (local limit exceeded), a
 * malformed request an A-ABORT (invalid PDU parameter).
 */
export function checkAssociateRq(pdu: Buffer): AssociateRqVerdict {
  if (pdu.length > MAX_ASSOCIATE_RQ_LENGTH) {
    return limitRejection(`A-ASSOCIATE-RQ of ${pdu.length} bytes; at most ${MAX_ASSOCIATE_RQ_LENGTH}`);
  }
  if (pdu.length >= PDU_HEADER_LENGTH + 2 && (pdu.readUInt16BE(PDU_HEADER_LENGTH) & 1) === 0) {
    return {
      ok: false,
      kind: 'reject',
      why: 'A-ASSOCIATE-RQ without protocol version 1',
      answer: associateRjPdu(
        RejectResult.Permanent,
        RejectSource.ServiceProviderAcse,
        AcseReason.ProtocolVersionNotSupported,
      ),
    };
  }
  try {
    const limit = checkItems(pdu);
    return limit ? limitRejection(limit) : { ok: true };
  } catch (err) {
    if (!(err instanceof MalformedRequestError)) throw err;
    return { ok: false, kind: 'abort', why: err.message, answer: abortPdu(err.reason) };
  }
}

/** Walks the items; throws MalformedRequestError, or returns why a limit is exceeded, or undefined. */
function checkItems(pdu: Buffer): string | undefined {
  const start = PDU_HEADER_LENGTH + FIXED_FIELDS_LENGTH;
  if (pdu.length < start || pdu.readUInt32BE(2) !== pdu.length - PDU_HEADER_LENGTH)
    throw new MalformedRequestError('A-ASSOCIATE-RQ shorter than its fixed fields');
  const ids = new Set<number>();
  for (const item of items(pdu, start, pdu.length, 'item')) {
    switch (item.type) {
      case ItemType.ApplicationContext:
        break;
      case ItemType.PresentationContext: {
        if (ids.size === MAX_PRESENTATION_CONTEXTS)
          return `more than ${MAX_PRESENTATION_CONTEXTS} presentation contexts proposed`;
        const limit = checkPresentationContext(pdu, item.start, item.end, ids);
        if (limit) return limit;
        break;
      }
      case ItemType.UserInformation:
        checkUserInformation(pdu, item.start, item.end);
        break;
      default:
        throw new MalformedRequestError(
          `unknown A-ASSOCIATE-RQ item type 0x${item.type.toString(16)}`,
          AbortReason.UnrecognizedPduParameter,
        );
    }
  }
  return undefined;
}

function checkPresentationContext(
  pdu: Buffer,
  start: number,
  end: number,
  ids: Set<number>,
): string | undefined {
  if (end - start < 4) throw new MalformedRequestError('presentation context item too short');
  const id = pdu.readUInt8(start);
  if (id % 2 === 0) throw new MalformedRequestError(`presentation context ID ${id} is not odd and 1-255`);
  if (ids.has(id)) throw new MalformedRequestError(`presentation context ID ${id} proposed twice`);
  ids.add(id);
  let abstractSyntaxes = 0;
  let transferSyntaxes = 0;
  for (const sub of items(pdu, start + 4, end, 'presentation context sub-item')) {
    if (sub.type === ItemType.AbstractSyntax) {
      // The library files transfer syntaxes under the context its abstract syntax created: it must come first.
      if (abstractSyntaxes > 0 || transferSyntaxes > 0)
        throw new MalformedRequestError(`presentation context ${id}: abstract syntax not first and alone`);
      abstractSyntaxes += 1;
    } else if (sub.type === ItemType.TransferSyntax) {
      if (abstractSyntaxes === 0)
        throw new MalformedRequestError(`presentation context ${id}: transfer syntax before abstract syntax`);
      transferSyntaxes += 1;
      if (transferSyntaxes > MAX_TRANSFER_SYNTAXES_PER_CONTEXT)
        return `presentation context ${id}: more than ${MAX_TRANSFER_SYNTAXES_PER_CONTEXT} transfer syntaxes`;
    }
    // Other sub-items are skipped whole by the library.
  }
  // Without transfer syntaxes the context is refused by the policy (none supported), as the library allows.
  if (abstractSyntaxes !== 1)
    throw new MalformedRequestError(`presentation context ${id}: no abstract syntax`);
  return undefined;
}

/** The sub-items the library reads field by field must have exactly the length their fields take. */
function checkUserInformation(pdu: Buffer, start: number, end: number): void {
  for (const sub of items(pdu, start, end, 'user information sub-item')) {
    const length = sub.end - sub.start;
    let expected: number | undefined;
    switch (sub.type) {
      case UserItem.MaxLength:
      case UserItem.AsyncOps:
        expected = 4;
        break;
      case UserItem.RoleSelection:
        expected = length >= 2 ? 2 + pdu.readUInt16BE(sub.start) + 2 : undefined;
        break;
      case UserItem.UserIdentity: {
        if (length < 4) break;
        const primary = pdu.readUInt16BE(sub.start + 2);
        const at = sub.start + 4 + primary;
        expected = at + 2 <= sub.end ? 4 + primary + 2 + pdu.readUInt16BE(at) : undefined;
        break;
      }
      default:
        continue; // read as a string or skipped whole by the library
    }
    if (expected !== length)
      throw new MalformedRequestError(`user information sub-item 0x${sub.type.toString(16)} of bad length`);
  }
}

interface Item {
  readonly type: number;
  /** Offset of the value. */
  readonly start: number;
  /** Offset just after the value. */
  readonly end: number;
}

/** The items in `[start, end)`, each checked to lie within it; they must fill it exactly. */
function* items(pdu: Buffer, start: number, end: number, what: string): Generator<Item> {
  let at = start;
  while (at < end) {
    if (at + ITEM_HEADER_LENGTH > end) throw new MalformedRequestError(`${what} header cut short`);
    const type = pdu.readUInt8(at);
    const valueEnd = at + ITEM_HEADER_LENGTH + pdu.readUInt16BE(at + 2);
    if (valueEnd > end) throw new MalformedRequestError(`${what} 0x${type.toString(16)} overruns its parent`);
    yield { type, start: at + ITEM_HEADER_LENGTH, end: valueEnd };
    at = valueEnd;
  }
}

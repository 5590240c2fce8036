import { describe, expect, it } from 'vitest';
import { checkAssociateRq, MAX_ASSOCIATE_RQ_LENGTH, type AssociateRqVerdict } from './associate-rq-check.js';
import {
  associateRq,
  CT_IMAGE,
  EXPLICIT_LE,
  IMPLICIT_LE,
  item,
  pdu,
  presentationContext,
} from './testing/raw-pdus.js';

/** The answer PDU's type and its last three bytes (RJ: result, source, reason; ABORT: -, source, reason). */
function answerOf(verdict: AssociateRqVerdict): { kind: string; type: number; fields: number[] } | 'ok' {
  if (verdict.ok) return 'ok';
  return { kind: verdict.kind, type: verdict.answer[0] ?? -1, fields: [...verdict.answer.subarray(7, 10)] };
}

const LIMIT_EXCEEDED = { kind: 'reject', type: 0x03, fields: [1, 3, 2] };
const INVALID_PARAMETER = { kind: 'abort', type: 0x07, fields: [0, 2, 6] };

describe('checkAssociateRq', () => {
  it('lets a well-formed request through', () => {
    const rq = associateRq(
      [
        presentationContext(1, CT_IMAGE, [EXPLICIT_LE, IMPLICIT_LE]),
        presentationContext(3, CT_IMAGE, [IMPLICIT_LE]),
      ],
      [item(0x54, Buffer.concat([Buffer.from([0, 8]), Buffer.from('1.2.3.45'), Buffer.from([1, 0])]))],
    );
    expect(checkAssociateRq(rq)).toEqual({ ok: true });
  });

  it('lets 128 contexts with 32 transfer syntaxes each through', () => {
    const syntaxes = Array.from({ length: 32 }, (_, i) => `1.2.840.10008.1.2.4.${i}`);
    const contexts = Array.from({ length: 128 }, (_, i) =>
      presentationContext(2 * i + 1, CT_IMAGE, syntaxes),
    );
    const rq = associateRq(contexts);
    expect(rq.length).toBeLessThan(MAX_ASSOCIATE_RQ_LENGTH);
    expect(checkAssociateRq(rq)).toEqual({ ok: true });
  });

  it('aborts on two contexts with one ID (the library renumbered one to 257 and crashed)', () => {
    const rq = associateRq([
      presentationContext(255, CT_IMAGE, [IMPLICIT_LE]),
      presentationContext(255, CT_IMAGE, [IMPLICIT_LE]),
    ]);
    expect(answerOf(checkAssociateRq(rq))).toEqual(INVALID_PARAMETER);
  });

  it('aborts on an even context ID', () => {
    expect(
      answerOf(checkAssociateRq(associateRq([presentationContext(2, CT_IMAGE, [IMPLICIT_LE])]))),
    ).toEqual(INVALID_PARAMETER);
  });

  it('rejects more than 128 contexts, 33 transfer syntaxes, or a request beyond the length limit', () => {
    const many = Array.from({ length: 129 }, (_, i) =>
      presentationContext((2 * i + 1) % 256, CT_IMAGE, [IMPLICIT_LE]),
    );
    expect(answerOf(checkAssociateRq(associateRq(many)))).toEqual(LIMIT_EXCEEDED);
    const syntaxes = Array.from({ length: 33 }, () => IMPLICIT_LE);
    expect(answerOf(checkAssociateRq(associateRq([presentationContext(1, CT_IMAGE, syntaxes)])))).toEqual(
      LIMIT_EXCEEDED,
    );
    const huge = pdu(0x01, Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(MAX_ASSOCIATE_RQ_LENGTH)]));
    expect(answerOf(checkAssociateRq(huge))).toEqual(LIMIT_EXCEEDED);
  });

  it('rejects a request without protocol version 1', () => {
    const rq = associateRq([presentationContext(1, CT_IMAGE, [IMPLICIT_LE])]);
    rq.writeUInt16BE(2, 6);
    expect(answerOf(checkAssociateRq(rq))).toEqual({ kind: 'reject', type: 0x03, fields: [1, 2, 2] });
  });

  it('aborts on items that do not frame or that the library would misread', () => {
    const context = presentationContext(1, CT_IMAGE, [IMPLICIT_LE]);
    const cases: Buffer[] = [
      associateRq([context, item(0x60, Buffer.alloc(4))]), // unknown item type
      associateRq([
        item(
          0x20,
          Buffer.concat([
            Buffer.from([1, 0, 0, 0]),
            item(0x40, Buffer.from(IMPLICIT_LE)),
            item(0x30, Buffer.from(CT_IMAGE)),
          ]),
        ),
      ]), // transfer syntax first
      associateRq([
        item(
          0x20,
          Buffer.concat([
            Buffer.from([1, 0, 0, 0]),
            item(0x30, Buffer.from(CT_IMAGE)),
            item(0x30, Buffer.from(CT_IMAGE)),
          ]),
        ),
      ]), // two abstract syntaxes
      associateRq([item(0x20, Buffer.from([1, 0, 0, 0]))]), // no abstract syntax
      associateRq([context], [item(0x51, Buffer.alloc(2))]), // max length of 2 bytes
      associateRq(
        [context],
        [item(0x54, Buffer.concat([Buffer.from([0, 40]), Buffer.from('1.2'), Buffer.from([1, 0])]))],
      ), // role UID length lies
      pdu(0x01, Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(38)])), // shorter than the fixed fields
    ];
    for (const rq of cases)
      expect(answerOf(checkAssociateRq(rq))).toMatchObject({ kind: 'abort', type: 0x07 });
    // An item whose length runs past the PDU.
    const overrun = associateRq([context]);
    overrun.writeUInt16BE(0xffff, 6 + 68 + 2);
    expect(answerOf(checkAssociateRq(overrun))).toEqual(INVALID_PARAMETER);
  });
});

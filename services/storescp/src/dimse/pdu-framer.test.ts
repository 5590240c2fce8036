import { describe, expect, it } from 'vitest';
import {
  joinPdu,
  pduLengthLimit,
  PduFramer,
  PduTooLongError,
  type FramedPdu,
  type FramingError,
} from './pdu-framer.js';

function pdu(type: number, body: Buffer): Buffer {
  const header = Buffer.alloc(6);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 2);
  return Buffer.concat([header, body]);
}

function body(length: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff));
}

function frame(chunks: readonly Buffer[]): { pdus: FramedPdu[]; errors: FramingError[] } {
  const pdus: FramedPdu[] = [];
  const errors: FramingError[] = [];
  const framer = new PduFramer(
    (p) => pdus.push(p),
    (e) => errors.push(e),
  );
  for (const chunk of chunks) framer.push(chunk);
  return { pdus, errors };
}

/** Cuts `bytes` at the given offsets. */
function cut(bytes: Buffer, at: readonly number[]): Buffer[] {
  const edges = [0, ...at, bytes.length];
  return edges.slice(1).map((end, i) => bytes.subarray(edges[i], end));
}

describe('PduFramer', () => {
  const stream = Buffer.concat([pdu(0x01, body(70, 1)), pdu(0x04, body(300, 2)), pdu(0x05, body(4, 3))]);
  const expected = [
    { type: 0x01, bytes: pdu(0x01, body(70, 1)) },
    { type: 0x04, bytes: pdu(0x04, body(300, 2)) },
    { type: 0x05, bytes: pdu(0x05, body(4, 3)) },
  ];

  it('hands out every PDU whole and in order, however the stream is cut', () => {
    const cuts: number[][] = [[], [1], [3, 5], [6], [76, 77], [80, 200, 381], [10, 382]];
    // every single cut point, including inside each 6-byte header
    for (let i = 1; i < stream.length; i++) cuts.push([i]);
    for (const at of cuts) {
      const { pdus, errors } = frame(cut(stream, at));
      expect(errors).toEqual([]);
      expect(pdus.map((p) => ({ type: p.type, bytes: joinPdu(p) }))).toEqual(expected);
      expect(pdus.map((p) => p.length)).toEqual(expected.map((e) => e.bytes.length));
    }
  });

  it('hands out byte-at-a-time input too', () => {
    const { pdus } = frame(
      cut(
        stream,
        Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
      ),
    );
    expect(pdus.map((p) => joinPdu(p))).toEqual(expected.map((e) => e.bytes));
  });

  it('does not copy a PDU that lies in one chunk', () => {
    const { pdus } = frame([stream]);
    const [first] = pdus;
    expect(first?.pieces).toHaveLength(1);
    expect(first && joinPdu(first).buffer).toBe(stream.buffer);
  });

  it('gives a PDU spread over chunks as slices of those chunks', () => {
    const large = pdu(0x04, body(2000, 4));
    const chunks = cut(large, [300, 1000]);
    const { pdus } = frame(chunks);
    const [first] = pdus;
    expect(first?.pieces.every((p, i) => p.buffer === chunks[i]?.buffer)).toBe(true);
    expect(first?.pieces.map((p) => p.length)).toEqual([300, 700, 1006]);
  });

  it('copies small chunks together instead of keeping one slice per chunk', () => {
    const { pdus } = frame(
      cut(
        stream,
        Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
      ),
    );
    // 380 one-byte chunks: the RQ (76 bytes) and P-DATA (306) each lie in one staging slice.
    expect(pdus.map((p) => p.pieces.length)).toEqual([1, 1, 1]);
    expect(pdus.map((p) => joinPdu(p))).toEqual(expected.map((e) => e.bytes));
  });

  it('frames a 256 KiB PDU sent as 256k one-byte chunks (linear: the old shift() per chunk took minutes)', () => {
    const big = pdu(0x04, body(256 * 1024 - 6, 5));
    const pdus: FramedPdu[] = [];
    const framer = new PduFramer(
      (p) => pdus.push(p),
      (e) => {
        throw e;
      },
    );
    for (let i = 0; i < big.length; i++) framer.push(big.subarray(i, i + 1));
    expect(pdus).toHaveLength(1);
    const [only] = pdus;
    if (!only) throw new Error('no PDU');
    expect(only.pieces.length).toBeLessThanOrEqual(big.length / 1024);
    expect(joinPdu(only).equals(big)).toBe(true);
    expect(framer.bufferedBytes).toBe(0);
  });

  it('keeps slices valid when small chunks of several PDUs share a staging buffer', () => {
    const many = Array.from({ length: 200 }, (_, i) => pdu(0x04, body(i % 50, i)));
    const bytes = Buffer.concat(many);
    const pdus: FramedPdu[] = [];
    const framer = new PduFramer(
      (p) => pdus.push(p),
      () => undefined,
    );
    for (let at = 0; at < bytes.length; at += 7) framer.push(bytes.subarray(at, at + 7));
    // Checked only after everything was pushed: a slice overwritten later would show.
    expect(pdus.map((p) => joinPdu(p))).toEqual(many);
  });

  it('asks a limit function at each PDU header', () => {
    let limit = 100;
    const errors: FramingError[] = [];
    const pdus: FramedPdu[] = [];
    const framer = new PduFramer(
      (p) => pdus.push(p),
      (e) => errors.push(e),
      () => limit,
    );
    framer.push(pdu(0x01, body(90, 1)));
    limit = 50;
    framer.push(pdu(0x04, body(90, 1)));
    expect(pdus.map((p) => p.type)).toEqual([0x01]);
    expect(errors.map((e) => e.message)).toEqual([
      'PDU of type 4 announces 96 bytes; at most 50 are accepted',
    ]);
  });

  it('holds back an incomplete PDU until its last byte arrives', () => {
    const { pdus } = frame([stream.subarray(0, 75)]);
    expect(pdus).toEqual([]);
  });

  it('accepts an empty PDU body', () => {
    const { pdus } = frame([pdu(0x06, Buffer.alloc(0))]);
    expect(pdus.map((p) => p.length)).toEqual([6]);
  });

  it('reports an unknown PDU type once and then ignores the rest of the stream', () => {
    const { pdus, errors } = frame([pdu(0x01, body(10, 1)), pdu(0x09, body(10, 1)), pdu(0x05, body(4, 3))]);
    expect(pdus.map((p) => p.type)).toEqual([0x01]);
    expect(errors.map((e) => e.pduType)).toEqual([0x09]);
    expect(errors[0]?.message).toBe('Unknown PDU type: 9');
  });

  it('reads lengths above 2^31 without going negative', () => {
    const header = Buffer.from([0x04, 0, 0x80, 0, 0, 0]);
    const { pdus, errors } = frame([header, body(100, 0)]);
    expect(pdus).toEqual([]); // waits for 2 GiB; never a negative length that completes at once
    expect(errors).toEqual([]);
  });
});

describe('PduFramer length limit', () => {
  it('refuses a PDU announcing more than the limit, before buffering it', () => {
    const errors: Error[] = [];
    const pdus: FramedPdu[] = [];
    const framer = new PduFramer(
      (p) => pdus.push(p),
      (e) => errors.push(e),
      pduLengthLimit(16_384),
    );
    const header = Buffer.alloc(6);
    header.writeUInt8(0x04, 0);
    header.writeUInt32BE(0xfffffff0, 2);
    framer.push(header);
    framer.push(Buffer.alloc(1000));
    expect(pdus).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(PduTooLongError);
    expect(errors[0]?.message).toMatch(/announces 4294967286 bytes; at most 1048582/);
  });

  it('accepts PDUs up to the limit', () => {
    const limit = pduLengthLimit(16_384);
    const { pdus, errors } = frame([pdu(0x04, body(limit - 6, 9))]);
    expect(errors).toEqual([]);
    expect(pdus).toHaveLength(1);
  });

  it('allows at least 1 MiB, the announced maximum beyond that, and 64 MiB for "unlimited"', () => {
    expect(pduLengthLimit(16_384)).toBe(6 + 1024 * 1024);
    expect(pduLengthLimit(4 * 1024 * 1024)).toBe(6 + 4 * 1024 * 1024);
    expect(pduLengthLimit(0)).toBe(6 + 64 * 1024 * 1024);
  });
});

import { describe, expect, it } from 'vitest';
import type { FramedPdu } from './pdu-framer.js';
import { splitPdvs } from './pdv-split.js';

function pdv(contextId: number, control: number, value: Buffer): Buffer {
  const header = Buffer.alloc(6);
  header.writeUInt32BE(value.length + 2, 0);
  header.writeUInt8(contextId, 4);
  header.writeUInt8(control, 5);
  return Buffer.concat([header, value]);
}

/** A P-DATA-TF PDU of `items`, delivered as pieces cut at `cuts`. */
function pData(items: readonly Buffer[], cuts: readonly number[] = []): FramedPdu {
  const body = Buffer.concat(items);
  const header = Buffer.from([0x04, 0, 0, 0, 0, 0]);
  header.writeUInt32BE(body.length, 2);
  const bytes = Buffer.concat([header, body]);
  const edges = [0, ...cuts, bytes.length];
  return {
    type: 0x04,
    length: bytes.length,
    pieces: edges.slice(1).map((end, i) => bytes.subarray(edges[i], end)),
  };
}

const data = Buffer.from('0123456789abcdef');

describe('splitPdvs', () => {
  it('reads every PDV with its flags, wherever the pieces are cut', () => {
    const items = [pdv(1, 0x03, Buffer.from('cmd!')), pdv(3, 0x00, data), pdv(3, 0x02, Buffer.alloc(0))];
    const total = 6 + items.reduce((n, b) => n + b.length, 0);
    for (let cut = 1; cut < total; cut++) {
      const pdvs = splitPdvs(pData(items, [cut]));
      expect(pdvs?.map((p) => ({ ...p, value: Buffer.concat(p.value).toString() }))).toEqual([
        { contextId: 1, command: true, last: true, value: 'cmd!' },
        { contextId: 3, command: false, last: false, value: '0123456789abcdef' },
        { contextId: 3, command: false, last: true, value: '' },
      ]);
    }
  });

  it('gives values as slices of the pieces, not copies', () => {
    const pdu = pData([pdv(1, 0, data)], [16]); // 12 header bytes, then 4 value bytes in the first piece
    const [first] = splitPdvs(pdu) ?? [];
    const [a, b] = first?.value ?? [];
    const [pieceA, pieceB] = pdu.pieces;
    expect(first?.value).toHaveLength(2);
    expect(a?.buffer).toBe(pieceA?.buffer);
    expect(a?.byteOffset).toBe((pieceA?.byteOffset ?? 0) + 12);
    expect(b?.buffer).toBe(pieceB?.buffer);
    expect(b?.byteOffset).toBe(pieceB?.byteOffset);
    expect([a?.length, b?.length]).toEqual([4, 12]);
  });

  it('rejects items that do not exactly fill the PDU', () => {
    const overrun = pdv(1, 0, data);
    overrun.writeUInt32BE(100, 0);
    expect(splitPdvs(pData([overrun]))).toBeUndefined();
    const tooShort = pdv(1, 0, Buffer.alloc(0));
    tooShort.writeUInt32BE(1, 0);
    expect(splitPdvs(pData([tooShort, Buffer.alloc(1)]))).toBeUndefined();
    expect(splitPdvs(pData([pdv(1, 0, data), Buffer.from([0, 0, 0])]))).toBeUndefined();
  });

  it('reads a PDU without items as no PDVs', () => {
    expect(splitPdvs(pData([]))).toEqual([]);
  });
});

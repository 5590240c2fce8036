import { describe, expect, it } from 'vitest';
import { readElements } from './element-reader.js';
import { formatNumber, trimEnd } from './text-values.js';
import { TransferSyntax } from './uids.js';

/*
 * Values of several MB: with the quadratic trims these replace (`/\s*$/` retried from every space), each
 * of these would run for hours; linear, they take milliseconds. No timing is asserted: a test that never
 * ends fails on the test timeout.
 */

const MB = 1024 * 1024;

/** One element in implicit VR little endian (a 32-bit length, so any VR can hold MBs). */
function implicitElement(group: number, elem: number, value: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(elem, 2);
  header.writeUInt32LE(value.length, 4);
  return Buffer.concat([header, value]);
}

/** One explicit-VR little-endian element of a VR with a 32-bit length (UT, UC, SQ, ...). */
function explicitLongElement(group: number, elem: number, vr: string, value: Buffer): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(elem, 2);
  header.write(vr, 4, 'latin1');
  header.writeUInt32LE(value.length, 8);
  return Buffer.concat([header, value]);
}

const spacesThenX = (n: number): string => `${' '.repeat(n)}x`;

describe('text values of several MB, in linear time', () => {
  it('trims the end of 8 MB of spaces followed by a letter, and of 8 MB of spaces', () => {
    expect(trimEnd(spacesThenX(8 * MB))).toHaveLength(8 * MB + 1);
    expect(trimEnd(`x${' '.repeat(8 * MB)}`)).toBe('x');
    expect(trimEnd(`x${'\u3000\t\r\n'.repeat(2 * MB)}`)).toBe('x');
  });

  it('parses a number out of 8 MB of spaces', () => {
    expect(formatNumber(`${' '.repeat(4 * MB)}12.5${' '.repeat(4 * MB)}`)).toBe(12.5);
  });

  it('reads a UT of 8 MB of spaces and a letter whole when the bound allows it', () => {
    const value = Buffer.from(spacesThenX(8 * MB - 1), 'latin1');
    const dataset = explicitLongElement(0x0040, 0xa160, 'UT', value);
    const elements = readElements(dataset, TransferSyntax.ExplicitVRLittleEndian, { maxValueBytes: 16 * MB });
    const text = elements['0040A160']?.Value?.[0] as string;
    expect(text).toHaveLength(8 * MB);
    expect(text.endsWith(' x')).toBe(true);
    expect(elements['0040A160']?.TruncatedFrom).toBeUndefined();
  });

  it('reads LO, SH, CS, PN and DS values of 4 MB with internal spaces and backslashes', () => {
    const words = Buffer.from('a '.repeat(2 * MB), 'latin1');
    const values = Buffer.from('1 \\'.repeat(MB), 'latin1');
    const dataset = Buffer.concat([
      implicitElement(0x0008, 0x0060, words), // Modality, CS
      implicitElement(0x0008, 0x1030, words), // Study Description, LO
      implicitElement(0x0010, 0x0010, Buffer.from('Doe^J '.repeat(MB), 'latin1')), // PN
      implicitElement(0x0018, 0x0050, values), // Slice Thickness, DS
    ]);
    const elements = readElements(dataset, TransferSyntax.ImplicitVRLittleEndian, { maxValueBytes: 8 * MB });
    expect((elements['00081030']?.Value?.[0] as string).length).toBe(4 * MB - 1);
    expect(elements['00080060']?.Value).toHaveLength(1);
    expect(elements['00100010']?.Value).toHaveLength(1);
    expect(elements['00180050']?.Value).toHaveLength(MB + 1);
  });

  it('reads a multi-byte character set value of 4 MB', () => {
    const value = Buffer.from(`${'王 '.repeat(MB)}x`, 'utf8');
    const dataset = Buffer.concat([
      implicitElement(0x0008, 0x0005, Buffer.from('ISO_IR 192')),
      implicitElement(0x0008, 0x1030, value),
    ]);
    const elements = readElements(dataset, TransferSyntax.ImplicitVRLittleEndian, { maxValueBytes: 8 * MB });
    expect(elements['00081030']?.Value?.[0]).toBe(`${'王 '.repeat(MB)}x`);
  });
});

describe('values past the bound are cut and marked', () => {
  it('keeps the first maxValueBytes of a long text value, marked with its full length', () => {
    const dataset = explicitLongElement(0x0040, 0xa160, 'UT', Buffer.from(spacesThenX(MB - 1), 'latin1'));
    const elements = readElements(dataset, TransferSyntax.ExplicitVRLittleEndian);
    expect(elements['0040A160']).toEqual({ vr: 'UT', Value: [''], TruncatedFrom: MB });
    const bounded = readElements(dataset, TransferSyntax.ExplicitVRLittleEndian, { maxValueBytes: 100 });
    expect(bounded['0040A160']).toEqual({ vr: 'UT', Value: [''], TruncatedFrom: MB });
    const text = Buffer.from('abc '.repeat(1000), 'latin1');
    const cut = readElements(
      explicitLongElement(0x0040, 0xa160, 'UT', text),
      TransferSyntax.ExplicitVRLittleEndian,
      { maxValueBytes: 10 },
    );
    expect(cut['0040A160']).toEqual({ vr: 'UT', Value: ['abc abc ab'], TruncatedFrom: 4000 });
  });

  it('cuts a multi-byte value on a character boundary', () => {
    const dataset = Buffer.concat([
      implicitElement(0x0008, 0x0005, Buffer.from('ISO_IR 192')),
      implicitElement(0x0008, 0x1030, Buffer.from('王王王王', 'utf8')), // 12 bytes
    ]);
    const elements = readElements(dataset, TransferSyntax.ImplicitVRLittleEndian, { maxValueBytes: 64 });
    expect(elements['00081030']).toEqual({ vr: 'LO', Value: ['王王王王'] });
    const bounded = readElements(
      Buffer.concat([
        implicitElement(0x0008, 0x0005, Buffer.from('ISO_IR 192')),
        implicitElement(0x0008, 0x1030, Buffer.from('王'.repeat(100), 'utf8')), // 300 bytes
      ]),
      TransferSyntax.ImplicitVRLittleEndian,
      { maxValueBytes: 100 },
    );
    // 100 bytes end inside the 34th character: 33 whole ones are kept.
    expect(bounded['00081030']).toEqual({ vr: 'LO', Value: ['王'.repeat(33)], TruncatedFrom: 300 });
  });

  it('keeps the numbers of a long numeric value that fit in the bound', () => {
    const doubles = Buffer.alloc(8 * MB);
    for (let i = 0; i < MB; i++) doubles.writeDoubleLE(i, i * 8);
    const dataset = implicitElement(0x0018, 0x9089, doubles); // Diffusion Gradient Orientation, FD
    const elements = readElements(dataset, TransferSyntax.ImplicitVRLittleEndian, { maxValueBytes: 80 });
    expect(elements['00189089']).toEqual({
      vr: 'FD',
      Value: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      TruncatedFrom: 8 * MB,
    });
  });

  it('keeps the items of a long sequence up to the bound, and walks the rest', () => {
    // 20,000 items of one SH element each (per-frame functional groups are like this): ~0.5 MB.
    const item = (i: number): Buffer => {
      const value = Buffer.from(`FRAME${String(i).padStart(5, '0')}  `.slice(0, 12), 'latin1');
      const element = Buffer.concat([Buffer.from([0x08, 0x00, 0x50, 0x00, 0x53, 0x48, 12, 0]), value]);
      const header = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]);
      header.writeUInt32LE(element.length, 4);
      return Buffer.concat([header, element]);
    };
    const items = Buffer.concat(Array.from({ length: 20_000 }, (_, i) => item(i)));
    const after = Buffer.from([0x10, 0x00, 0x10, 0x00, 0x50, 0x4e, 4, 0, ...Buffer.from('Doe^')]);
    const dataset = Buffer.concat([explicitLongElement(0x5200, 0x9230, 'SQ', items), after]);
    const elements = readElements(dataset, TransferSyntax.ExplicitVRLittleEndian, { maxValueBytes: 4096 });
    const sequence = elements['52009230'];
    expect(sequence?.TruncatedFrom).toBe(items.length);
    // Items start while at most 4096 bytes were read: 4096 / 28 bytes per item, and the one starting there.
    expect(sequence?.Value).toHaveLength(Math.floor(4096 / 28) + 1);
    expect(sequence?.Value?.[0]).toEqual({ '00080050': { vr: 'SH', Value: ['FRAME00000'] } });
    // The element after the sequence is read: the walk went on to the end of it.
    expect(elements['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doe^' }] });
  });

  it('refuses sequences nested deeper than the framing check allows, without exhausting the stack', () => {
    // 40 levels of undefined-length sequences, each in an undefined-length item.
    const open = Buffer.from([
      ...[0x08, 0x00, 0x15, 0x11, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff], // (0008,1115) SQ undefined
      ...[0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff], // item, undefined
    ]);
    const close = Buffer.from([
      ...[0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0], // item delimiter
      ...[0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0], // sequence delimiter
    ]);
    const deep = Buffer.concat([...Array<Buffer>(40).fill(open), ...Array<Buffer>(40).fill(close)]);
    expect(() => readElements(deep, TransferSyntax.ExplicitVRLittleEndian)).toThrow(/nest too deeply/);
    const shallow = Buffer.concat([...Array<Buffer>(8).fill(open), ...Array<Buffer>(8).fill(close)]);
    expect(readElements(shallow, TransferSyntax.ExplicitVRLittleEndian)['00081115']?.vr).toBe('SQ');
  });
});

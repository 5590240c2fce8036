/**
 * A minimal, valid JPEG 2000 (Part 1) codestream for one grey-scale frame: one tile, no wavelet
 * decomposition, reversible 5-3 filter, one quality layer, and a single empty packet. Decoders
 * (checked with OpenJPEG 2.5) read it as a uniform image at the DC level (2^(bits-1)).
 *
 * Why not a real encoding of the frame: dcmtk has no JPEG 2000 encoder and `opj_compress` is not
 * installed. The receiver under test never decodes pixel data, it only has to keep the bytes, so a
 * well-formed codestream is all a fixture needs.
 */
export function minimalJ2kCodestream(columns: number, rows: number, bitsStored: number): Buffer {
  const u8 = (v: number): Buffer => Buffer.from([v]);
  const u16 = (v: number): Buffer => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return b;
  };
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return b;
  };
  const tileData = u8(0); // one packet header whose first bit says "empty packet"
  const parts = [
    u16(0xff4f), // SOC
    // SIZ: Lsiz=41, Rsiz=0, image and tile sizes, no offsets, one unsigned component, no subsampling
    ...[u16(0xff51), u16(41), u16(0), u32(columns), u32(rows), u32(0), u32(0), u32(columns), u32(rows)],
    ...[u32(0), u32(0), u16(1), u8(bitsStored - 1), u8(1), u8(1)],
    // COD: LRCP, 1 layer, no MCT, 0 decomposition levels, 64x64 code-blocks, default style, 5-3 reversible
    ...[u16(0xff52), u16(12), u8(0), u8(0), u16(1), u8(0), u8(0), u8(4), u8(4), u8(0), u8(1)],
    // QCD: no quantization, 2 guard bits, one sub-band with exponent = bit depth
    ...[u16(0xff5c), u16(4), u8(0x40), u8(bitsStored << 3)],
    // SOT: tile 0, Psot = SOT segment (12) + SOD (2) + tile data, part 0 of 1
    ...[u16(0xff90), u16(10), u16(0), u32(12 + 2 + tileData.length), u8(0), u8(1)],
    u16(0xff93), // SOD
    tileData,
    u16(0xffd9), // EOC
  ];
  const codestream = Buffer.concat(parts);
  // Encapsulated fragments have even length; a trailing zero after EOC is what the standard prescribes.
  return codestream.length % 2 === 0 ? codestream : Buffer.concat([codestream, u8(0)]);
}

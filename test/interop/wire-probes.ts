// Checks on dataset bytes that a corpus case really carried its oddity over the wire:
// a sender may re-encode what it reads (storescu gives sequences explicit lengths, for one).

/** An item delimitation item: only undefined-length items (never pixel fragments) end with one. */
const ITEM_DELIMITATION = Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]);
const ITEM_DELIMITATION_BIG_ENDIAN = Buffer.from([0xff, 0xfe, 0xe0, 0x0d, 0, 0, 0, 0]);
/** (7FE0,0010) OB, reserved bytes, undefined length: encapsulated Pixel Data in explicit VR LE. */
const ENCAPSULATED_PIXEL_DATA = Buffer.from([
  0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff,
]);
const ITEM_TAG = Buffer.from([0xfe, 0xff, 0x00, 0xe0]);

/** True when `dataset` (not deflated) holds at least one item of undefined length. */
export function hasUndefinedLengthSequence(dataset: Buffer): boolean {
  return dataset.includes(ITEM_DELIMITATION) || dataset.includes(ITEM_DELIMITATION_BIG_ENDIAN);
}

/** Length of the Basic Offset Table (first item of encapsulated Pixel Data, explicit VR LE); -1 if none. */
export function offsetTableLength(dataset: Buffer): number {
  const at = dataset.lastIndexOf(ENCAPSULATED_PIXEL_DATA);
  if (at < 0) return -1;
  const item = at + ENCAPSULATED_PIXEL_DATA.length;
  if (!dataset.subarray(item, item + 4).equals(ITEM_TAG)) return -1;
  return dataset.readUInt32LE(item + 4);
}

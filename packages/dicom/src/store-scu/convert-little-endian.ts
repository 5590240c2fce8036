import { readFile, writeFile } from 'node:fs/promises';
import dcmjs from 'dcmjs';
import { toArrayBuffer } from '../part10.js';
import { readInstanceFile, type InstanceFile } from './instance-file.js';

/**
 * Writes `instance` to `destination` in another uncompressed little endian transfer syntax (implicit <->
 * explicit VR), for a peer that accepted only that one. The whole instance is read into memory (one
 * instance, uncompressed), parsed and re-encoded by dcmjs; element values are unchanged, but the bytes
 * differ from the original, which is why this is only the fall-back.
 */
export async function convertLittleEndian(
  instance: InstanceFile,
  syntax: string,
  destination: string,
): Promise<InstanceFile> {
  const dict = dcmjs.data.DicomMessage.readFile(toArrayBuffer(await readFile(instance.path)));
  dict.meta['00020010'] = { vr: 'UI', Value: [syntax] };
  await writeFile(destination, Buffer.from(dict.write()));
  return readInstanceFile(destination);
}

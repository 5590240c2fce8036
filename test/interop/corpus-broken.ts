// Broken corpus cases: a receiver ought to refuse them. dcmtk's verdict on them is recorded, not required
// (its storescp stores some broken instances, e.g. one without its SOP Instance UID).
import { readFile, stat, writeFile } from 'node:fs/promises';
import { buildPart10Prefix } from '@dicomflow/dicom';
import { newUid, readFileMeta, truncatedCopy, withMissingTag } from '@dicomflow/test-helpers';
import { casePath, EXPLICIT_LE, named } from './corpus-case.js';

/** Broken cases, in a fixed order. */
export const BROKEN_CASES = [
  named('broken-truncated-pixels', async (b, name) => {
    const src = b.source();
    const file = casePath(b, name);
    const { datasetOffset } = await readFileMeta(src);
    const { size } = await stat(src);
    await truncatedCopy(src, file, datasetOffset + Math.floor((size - datasetOffset) * 0.9));
    return { about: 'dataset cut short in its pixel data', file, sender: 'raw', valid: false };
  }),
  named('broken-truncated-header', async (b, name) => {
    const src = b.source();
    const file = casePath(b, name);
    // Two bytes into the value of Patient's Name: the data ends inside an element, before Pixel Data.
    const at = (await readFile(src)).indexOf(Buffer.from('\x10\x00\x10\x00PN', 'latin1'));
    await truncatedCopy(src, file, at + 10);
    return { about: 'dataset cut short in its header', file, sender: 'raw', valid: false };
  }),
  named('broken-not-dicom', async (b, name) => {
    const meta = await readFileMeta(b.source());
    const file = casePath(b, name);
    const prefix = buildPart10Prefix({ ...meta, transferSyntaxUid: EXPLICIT_LE });
    await writeFile(file, Buffer.concat([prefix, Buffer.from('this is text, not DICOM. '.repeat(64))]));
    return { about: 'dataset bytes that are not DICOM', file, sender: 'raw', valid: false };
  }),
  named('broken-uid-mismatch', async (b, name) => {
    const src = b.source();
    const meta = await readFileMeta(src);
    const file = casePath(b, name);
    // The raw sender names the meta group's instance in the C-STORE: another one than the dataset holds.
    const prefix = buildPart10Prefix({ ...meta, sopInstanceUid: newUid() });
    await writeFile(file, Buffer.concat([prefix, (await readFile(src)).subarray(meta.datasetOffset)]));
    return {
      about: 'the C-STORE names another instance than the dataset',
      file,
      sender: 'raw',
      valid: false,
    };
  }),
  named('broken-no-sop-instance-uid', async (b, name) => {
    const file = casePath(b, name);
    await withMissingTag(b.source(), file, 'SOPInstanceUID');
    return { about: 'the dataset lacks its SOP Instance UID', file, sender: 'storescu', valid: false };
  }),
];

import { copyFile, open, readFile, rm, writeFile } from 'node:fs/promises';
import { FixtureError } from './errors.js';
import { readFileMeta } from './part10-meta.js';
import { runChecked } from './run-command.js';

export type MissingTagKeyword = 'StudyInstanceUID' | 'SeriesInstanceUID' | 'SOPInstanceUID' | 'SOPClassUID';

const TAGS: Record<MissingTagKeyword, string> = {
  StudyInstanceUID: '(0020,000d)',
  SeriesInstanceUID: '(0020,000e)',
  SOPInstanceUID: '(0008,0018)',
  SOPClassUID: '(0008,0016)',
};

/** Where the SOP UIDs are parked so storescu can still fill the C-STORE command (see withMissingTag). */
const PARKING_SEQUENCE = '(0008,1140)[0]'; // ReferencedImageSequence, first item

/**
 * Copies `src` to `dst` with `keyword` erased from the top level of the dataset (dcmodify -ea), while the
 * file meta group stays exactly as in `src` (Media Storage SOP Class/Instance UID included).
 *
 * For SOPInstanceUID/SOPClassUID, storescu builds the C-STORE command (Affected SOP Class/Instance UID)
 * from the dataset and refuses a file without them; but its lookup searches nested sequences too. So
 * the value is parked in a ReferencedImageSequence item: the command is complete, the dataset's top
 * level lacks the element, which is exactly what a receiver sees from a sender that dropped it.
 */
export async function withMissingTag(src: string, dst: string, keyword: MissingTagKeyword): Promise<void> {
  const meta = await readFileMeta(src);
  const original = await readFile(src);
  await copyFile(src, dst);
  const args = ['-q', '-nb', '-nmu', '-F', '-ea', TAGS[keyword]];
  if (keyword === 'SOPInstanceUID' || keyword === 'SOPClassUID') {
    args.push('-i', `${PARKING_SEQUENCE}.(0008,0016)=${meta.sopClassUid}`);
    args.push('-i', `${PARKING_SEQUENCE}.(0008,0018)=${meta.sopInstanceUid}`);
  }
  // -F writes the dataset alone (dcmodify would otherwise rebuild the meta group from the dataset);
  // the original meta group is put back in front, unchanged.
  await runChecked('dcmodify', [...args, dst]);
  const dataset = await readFile(dst);
  await writeFile(dst, Buffer.concat([original.subarray(0, meta.datasetOffset), dataset]));
}

/**
 * Copies the first `keepBytes` bytes of `src` to `dst`: a Part-10 file whose dataset stops mid-way.
 * `keepBytes` must lie past the meta group. Note that dcmtk senders (storescu, dcmsend) parse a file
 * before sending and refuse such a file ("premature end of stream"); to put a cut-short dataset on the
 * wire use {@link rawStoreScu}, which sends the dataset bytes as they are on disk.
 */
export async function truncatedCopy(src: string, dst: string, keepBytes: number): Promise<void> {
  const { datasetOffset } = await readFileMeta(src);
  if (keepBytes <= datasetOffset) {
    throw new FixtureError(
      `keepBytes ${keepBytes} would cut into the meta group (dataset starts at ${datasetOffset})`,
    );
  }
  const handle = await open(src, 'r');
  try {
    const head = Buffer.alloc(keepBytes);
    const { bytesRead } = await handle.read(head, 0, keepBytes, 0);
    if (bytesRead < keepBytes)
      throw new FixtureError(`${src} has only ${bytesRead} bytes, cannot keep ${keepBytes}`);
    await writeFile(dst, head);
  } finally {
    await handle.close();
  }
}

/**
 * Copies `src` to `dst` with SOP Class UID `sopClassUid` in the dataset and in the meta group (Media
 * Storage SOP Class UID), e.g. a private class such as '1.2.826.0.1.3680043.9.9999.1'.
 */
export async function withSopClass(src: string, dst: string, sopClassUid: string): Promise<void> {
  await copyFile(src, dst);
  try {
    // dcmodify updates the meta group from the dataset when the SOP Class UID changes.
    await runChecked('dcmodify', ['-q', '-nb', '-i', `(0008,0016)=${sopClassUid}`, dst]);
  } catch (error) {
    await rm(dst, { force: true });
    throw error;
  }
  const meta = await readFileMeta(dst);
  if (meta.sopClassUid !== sopClassUid)
    throw new FixtureError(`${dst}: meta SOP class is ${meta.sopClassUid}`);
}

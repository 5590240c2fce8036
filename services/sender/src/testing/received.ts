import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { datasetDigest, readFileMeta } from '@dicomflow/test-helpers';

/** SOP Instance UID -> dataset digest of every Part-10 file in `dir` (a dcmtk storescp output folder). */
export async function receivedDigests(dir: string): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return digests;
  }
  for (const name of names) {
    const path = join(dir, name);
    const meta = await readFileMeta(path).catch(() => undefined);
    if (meta) digests.set(meta.sopInstanceUid, await datasetDigest(path));
  }
  return digests;
}

/** Files in `dir` (each received C-STORE is one file for dcmtk storescp, a resend a second one). */
export async function fileCount(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).length;
  } catch {
    return 0;
  }
}

/** SOP Instance UID -> dataset digest of each file sent. */
export async function sentDigests(files: readonly string[]): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  for (const file of files) digests.set((await readFileMeta(file)).sopInstanceUid, await datasetDigest(file));
  return digests;
}

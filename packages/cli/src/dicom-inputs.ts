import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { inspectPart10File } from '@dicomflow/dicom';
import type { MatchInstance } from '@dicomflow/flows';

/** A file given to `dicomflow match` that could not be used, and why. */
export interface SkippedInput {
  readonly path: string;
  readonly reason: string;
}

/** The DICOM files found under the given paths, read as matching sees them. */
export interface DicomInputs {
  /** `member` is the file's path. */
  readonly instances: readonly MatchInstance[];
  readonly skipped: readonly SkippedInput[];
}

/**
 * Reads every file named, and every file under a named folder (recursively, hidden entries skipped), as a
 * Part-10 DICOM file with {@link inspectPart10File}; what is not DICOM is skipped with the reason.
 */
export async function readDicomInputs(paths: readonly string[]): Promise<DicomInputs> {
  const instances: MatchInstance[] = [];
  const skipped: SkippedInput[] = [];
  for (const path of await expandPaths(paths, skipped)) {
    try {
      const info = await inspectPart10File(path);
      instances.push({ member: path, elements: info.elements });
    } catch (err) {
      skipped.push({ path, reason: (err as Error).message });
    }
  }
  return { instances, skipped };
}

async function expandPaths(paths: readonly string[], skipped: SkippedInput[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(path)).isDirectory();
    } catch (err) {
      skipped.push({ path, reason: (err as Error).message });
      continue;
    }
    if (!isDirectory) {
      files.push(path);
      continue;
    }
    const entries = await readdir(path, { recursive: true, withFileTypes: true });
    const found = entries
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name))
      .filter(
        (file) =>
          !relative(path, file)
            .split(sep)
            .some((part) => part.startsWith('.')),
      )
      .sort();
    files.push(...found);
  }
  return files;
}

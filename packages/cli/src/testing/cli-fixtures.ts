// Fixtures shared by the CLI tests: temp folders with flow files and generated DICOM files.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCtSeries } from '@dicomflow/test-helpers';
import type { CliOutput } from '../index.js';

/** A {@link CliOutput} that keeps the lines. */
export function captureOutput(): CliOutput & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (line) => stdout.push(line), err: (line) => stderr.push(line) };
}

/** A new temp folder. */
export function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'dicomflow-cli-'));
}

/** Writes `files` (name -> YAML text) into `dir/flows` and returns that folder. */
export async function writeFlows(dir: string, files: Readonly<Record<string, string>>): Promise<string> {
  const flows = join(dir, 'flows');
  await mkdir(flows, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(flows, name), text);
  return flows;
}

/** Small images: the CLI reads headers, pixel data only costs time. */
const TINY = { rows: 8, columns: 8 } as const;

/**
 * Writes a study into `dir/study`: CT series 1 (3 files) and MR series 1 (2 files) and 2 (1 file, a
 * "localizer" told apart by its series number), plus a text file that is not DICOM. Returns the folder.
 */
export async function writeStudy(dir: string): Promise<string> {
  const study = join(dir, 'study');
  await generateCtSeries(join(study, 'ct'), 3, { ...TINY, modality: 'CT', seriesNumber: 1 });
  await generateCtSeries(join(study, 'mr1'), 2, { ...TINY, modality: 'MR', seriesNumber: 1 });
  await generateCtSeries(join(study, 'mr2'), 1, { ...TINY, modality: 'MR', seriesNumber: 2 });
  await writeFile(join(study, 'README.txt'), 'not DICOM\n');
  return study;
}

/** Flow files used by the match tests. */
export const MATCH_FLOWS = {
  'ct.yaml':
    'name: CT copy\npriority: 2\ntriggers:\n  - Modality: CT\nmodels:\n  - docker_kwargs: { image: busybox }\n',
  'mr.yaml': 'name: MR\ntriggers:\n  - Modality: MR\n    SeriesNumber: "~^2$"\n',
  'ct-and-pt.yaml': 'triggers:\n  - Modality: CT\n  - Modality: PT\n',
  'no-triggers.yaml': 'name: idle\n',
} as const;

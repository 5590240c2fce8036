// The shape of a corpus case and what its builders share (see corpus.ts).
import { join } from 'node:path';
import { readFileMeta, runCommand } from '@dicomflow/test-helpers';
import type { DumpWork } from './dataset-dump.js';

/** One instance of the corpus and how it goes on the wire. */
export interface CorpusCase {
  readonly name: string;
  /** What is unusual about it. */
  readonly about: string;
  readonly file: string;
  /**
   * 'storescu': dcmtk's storescu sends it. 'raw': the file's dataset bytes go on the wire exactly as on
   * disk, for bytes storescu will not send (it re-encodes what it parsed: sequences get explicit lengths,
   * a cut-short file is refused).
   */
  readonly sender: 'storescu' | 'raw';
  /**
   * storescu's proposal: 'file' (default) proposes the file's own transfer syntax; 'storescu' leaves it to
   * storescu's options in `storescuArgs` (files without a meta header, whose syntax storescu detects).
   */
  readonly propose?: 'file' | 'storescu';
  /** More storescu options. */
  readonly storescuArgs?: readonly string[];
  /**
   * Valid (or a lapse every reader forgives, named in `about`): a receiver ought to store it. Broken
   * ones ought to be refused.
   */
  readonly valid: boolean;
  /** A check on the dataset bytes that arrived: the case really put its oddity on the wire. */
  readonly onWire?: (dataset: Buffer) => boolean;
  /** The instance the C-STORE names ('' when its dataset holds none a reader finds). */
  readonly sopInstanceUid: string;
}

/** What the case builders share: a fresh fixture per case (each case needs its own SOP Instance UID). */
export interface Builder {
  readonly dir: string;
  readonly work: DumpWork;
  /** A fixture no other case uses: a 64x64 CT slice, explicit VR little endian, defined lengths. */
  source(): string;
}

/** Builds one case; `name` is known before anything is built, so a test can list the cases up front. */
export interface CaseBuilder {
  readonly name: string;
  build(b: Builder): Promise<CorpusCase>;
}

export type CaseFields = Omit<CorpusCase, 'name' | 'sopInstanceUid'>;

/** Side of the fixtures' square images. */
export const SIDE = 64;
export const EXPLICIT_LE = '1.2.840.10008.1.2.1';

/** The SOP Instance UID in a file's dataset (files without a meta header too); '' when there is none. */
async function datasetSopInstanceUid(file: string): Promise<string> {
  const { stdout } = await runCommand('dcmdump', ['-q', '-Un', '-s', '+P', '0008,0018', file]);
  return /\[([0-9.]+)\]/.exec(stdout)?.[1] ?? '';
}

/** A case builder of this name; `build` gets the builder context and the case's name. */
export function named(name: string, build: (b: Builder, name: string) => Promise<CaseFields>): CaseBuilder {
  return {
    name,
    build: async (b) => {
      const fields = await build(b, name);
      // The raw sender names the meta group's instance in its C-STORE; storescu names the dataset's.
      const sopInstanceUid =
        fields.sender === 'raw'
          ? (await readFileMeta(fields.file)).sopInstanceUid
          : await datasetSopInstanceUid(fields.file);
      return { name, sopInstanceUid, ...fields };
    },
  };
}

/** Where a case's file goes. */
export function casePath(b: Builder, name: string): string {
  return join(b.dir, `${name}.dcm`);
}

// A corpus of unusual but valid DICOM instances, as dcmtk writes them, and a few broken ones, for
// comparing our receiver's verdicts with dcmtk's storescp (corpus.int.test.ts). Every file is generated
// from a fixture by dcmtk's own tools (dcmconv, dcmcjpeg, dcmcjpls, dcmcrle, dump2dcm, dcmodify), or by
// splicing bytes where a case is about bytes dcmtk does not write; nothing binary is committed.
import { join } from 'node:path';
import { generateCtSeries, newUid } from '@dicomflow/test-helpers';
import { SIDE, type Builder, type CorpusCase } from './corpus-case.js';
import { BROKEN_CASES } from './corpus-broken.js';
import { ELEMENT_CASES } from './corpus-elements.js';
import { ENCODING_CASES } from './corpus-encodings.js';
import { openDumpWork } from './dataset-dump.js';

export type { CorpusCase } from './corpus-case.js';

const BUILDERS = [...ENCODING_CASES, ...ELEMENT_CASES, ...BROKEN_CASES];

/** The names of the corpus's cases, in the order {@link buildCorpus} returns them. */
export const CORPUS_CASE_NAMES: readonly string[] = BUILDERS.map((b) => b.name);

/**
 * Writes the corpus into `dir` (which must exist) and returns its cases, each with SOP Instance UIDs of
 * its own. Fixtures are 64x64 CT slices of one study; cases are built one after another (~10 s).
 */
export async function buildCorpus(dir: string): Promise<CorpusCase[]> {
  const sources = await generateCtSeries(join(dir, 'sources'), BUILDERS.length * 2, {
    studyInstanceUid: newUid(),
    rows: SIDE,
    columns: SIDE,
    patientId: 'INTEROP-CORPUS',
  });
  const work = await openDumpWork(join(dir, 'x'));
  try {
    let next = 0;
    const builder: Builder = {
      dir,
      work,
      source() {
        const source = sources[next++];
        if (source === undefined) throw new Error('corpus: out of fixtures');
        return source;
      },
    };
    const cases: CorpusCase[] = [];
    for (const caseBuilder of BUILDERS) cases.push(await caseBuilder.build(builder));
    return cases;
  } finally {
    await work.close();
  }
}

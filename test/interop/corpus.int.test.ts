// Accepts what dcmtk accepts (issue 17): every instance of the corpus (corpus.ts) is sent to our receiver,
// running as `npm run stack` runs it, and to dcmtk's storescp, by dcmtk's storescu (or, for bytes storescu
// will not put on the wire, by a raw sender). Wherever dcmtk stores a valid instance, ours must store it
// too, with the very dataset bytes dcmtk received; broken instances must be refused by ours. dcmtk's
// verdict is that of its storescp in its default (parsing) mode; the bytes are those a second storescp
// wrote bit-preserving (+B), which stores whatever arrives without parsing it.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { datasetOffset } from '@dicomflow/dicom';
import { freePort, startDcmtkStorescp, type RunningProcess } from '@dicomflow/test-helpers';
import { AE_TITLE, E2E_TEST_TIMEOUT_MS, startE2eStack, type E2eStack } from '../e2e/support/e2e-stack.js';
import { buildCorpus, CORPUS_CASE_NAMES, type CorpusCase } from './corpus.js';
import { dcmtkStoredFile, sendCase, type Verdict } from './send-case.js';
import { StoredReceipts, storageFor } from './stored-receipts.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

const DCMTK_AE = 'STORESCP';

interface Outcome {
  readonly name: string;
  readonly valid: boolean;
  readonly ours: Verdict;
  readonly dcmtk: Verdict;
  /** Our stored dataset equals dcmtk's bit-preserved one (undefined: not compared). */
  readonly sameBytes?: boolean;
}

let stack: E2eStack;
let work: string;
let cases: Map<string, CorpusCase>;
let receipts: StoredReceipts;
const dcmtk = { verdict: { port: 0, dir: '' }, bits: { port: 0, dir: '' } };
const processes: RunningProcess[] = [];
const outcomes: Outcome[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'interop-corpus-'));
  const corpusDir = join(work, 'corpus');
  await mkdir(corpusDir);
  cases = new Map((await buildCorpus(corpusDir)).map((c) => [c.name, c]));
  for (const [key, bitPreserving] of [
    ['verdict', false],
    ['bits', true],
  ] as const) {
    const port = await freePort();
    const dir = join(work, `dcmtk-${key}`);
    processes.push(await startDcmtkStorescp({ port, outDir: dir, aeTitle: DCMTK_AE, bitPreserving }));
    dcmtk[key] = { port, dir };
  }
  stack = await startE2eStack({ consumer: false });
  receipts = new StoredReceipts(storageFor(stack.env), stack.env.S3_BUCKET_INCOMING ?? '');
}, 240_000);

afterAll(async () => {
  await stack.close();
  for (const running of processes) await running.stop();
  await rm(work, { recursive: true, force: true });
});

function datasetOf(file: Buffer): Buffer {
  return file.subarray(datasetOffset(file));
}

/** The dataset bytes dcmtk's bit-preserving storescp wrote for `c`, after sending it there. */
async function dcmtkBytes(c: CorpusCase): Promise<Buffer | undefined> {
  const verdict = await sendCase(c, dcmtk.bits.port, DCMTK_AE);
  if (!verdict.stored) return undefined;
  const file = await dcmtkStoredFile(dcmtk.bits.dir, c.sopInstanceUid);
  return file === undefined ? undefined : datasetOf(await readFile(file));
}

function caseNamed(name: string): CorpusCase {
  const c = cases.get(name);
  if (!c) throw new Error(`no corpus case ${name}`);
  return c;
}

describe('the corpus, sent to our receiver and to dcmtk storescp', () => {
  it.each(CORPUS_CASE_NAMES)('%s', async (name) => {
    const c = caseNamed(name);
    const ours = await sendCase(c, stack.aePort, AE_TITLE);
    const theirs = await sendCase(c, dcmtk.verdict.port, DCMTK_AE);
    if (!c.valid || !ours.stored) {
      outcomes.push({ name, valid: c.valid, ours, dcmtk: theirs });
      if (!c.valid) expect(ours.stored, `${c.about}: ${ours.detail}`).toBe(false);
      else expect(theirs.stored, `dcmtk stored ${name}, ours answered ${ours.detail}`).toBe(false);
      return;
    }
    const stored = await receipts.waitFor(c.sopInstanceUid);
    const dataset = datasetOf(await receipts.member(stored));
    const reference = await dcmtkBytes(c);
    outcomes.push({
      name,
      valid: true,
      ours,
      dcmtk: theirs,
      ...(reference === undefined ? {} : { sameBytes: reference.equals(dataset) }),
    });
    if (c.onWire) expect(c.onWire(dataset), `${name} did not arrive as ${c.about}`).toBe(true);
    // The raw sender sends the file's dataset bytes: those are what must be stored.
    if (c.sender === 'raw') expect(dataset.equals(datasetOf(await readFile(c.file))), name).toBe(true);
    // Where dcmtk takes it too, it received the same bytes from the same sender: both keep them as sent.
    if (theirs.stored)
      expect(reference?.equals(dataset), `${name}: stored bytes differ from dcmtk's`).toBe(true);
  });

  it('stores every valid instance dcmtk stores (summary)', async () => {
    const count = (f: (o: Outcome) => boolean): number => outcomes.filter(f).length;
    const bytes = (o: Outcome): string =>
      o.sameBytes === undefined ? '' : o.sameBytes ? 'same bytes ' : 'BYTES DIFFER ';
    const rows = outcomes.map(
      (o) =>
        `${o.name.padEnd(36)} ours ${(o.ours.stored ? 'stored' : 'refused').padEnd(8)}` +
        `dcmtk ${(o.dcmtk.stored ? 'stored' : 'refused').padEnd(8)}${bytes(o)}` +
        `(${o.ours.detail} / ${o.dcmtk.detail})`,
    );
    const summary = {
      cases: outcomes.length,
      storedByBoth: count((o) => o.ours.stored && o.dcmtk.stored),
      refusedByBoth: count((o) => !o.ours.stored && !o.dcmtk.stored),
      oursOnly: count((o) => o.ours.stored && !o.dcmtk.stored),
      dcmtkOnlyValid: count((o) => o.valid && !o.ours.stored && o.dcmtk.stored),
      dcmtkOnlyBroken: count((o) => !o.valid && !o.ours.stored && o.dcmtk.stored),
    };
    console.log(
      [
        ...rows,
        `corpus: ${summary.cases} cases, stored by both ${summary.storedByBoth}, refused by both ` +
          `${summary.refusedByBoth}, stored by ours only ${summary.oursOnly}, stored by dcmtk only ` +
          `${summary.dcmtkOnlyValid} valid (must be 0) + ${summary.dcmtkOnlyBroken} broken (refused by design)`,
      ].join('\n'),
    );
    expect(summary.dcmtkOnlyValid).toBe(0);
    expect(outcomes.filter((o) => o.sameBytes === false).map((o) => o.name)).toEqual([]);
    // No refused instance reached a receipt.
    await receipts.refresh();
    const refused = outcomes.filter((o) => !o.ours.stored).map((o) => caseNamed(o.name).sopInstanceUid);
    expect(refused.filter((uid) => uid !== '' && receipts.get(uid) !== undefined)).toEqual([]);
  });
});

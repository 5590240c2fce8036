// Every character set, end to end (issue 17): an instance per Specific Character Set DICOM defines, the
// PS3.5 Annex H, I and J names byte for byte among them, goes from dcmtk's storescu through the suite as
// `npm run stack` runs it. Each must be stored as sent, its name indexed decoded, and a flow whose trigger
// is written in the decoded text must match it; a name its character set cannot decode is stored all the
// same, kept raw and marked Undecodable in the index. dcmtk's storescp stores them all too.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { datasetOffset } from '@dicomflow/dicom';
import {
  freePort,
  generateCtSeries,
  newUid,
  readFileMeta,
  runChecked,
  startDcmtkStorescp,
  storescu,
  withLongText,
} from '@dicomflow/test-helpers';
import { AE_TITLE, E2E_TEST_TIMEOUT_MS, startE2eStack, type E2eStack } from '../e2e/support/e2e-stack.js';
import { CHARSET_CASES, UNDECODABLE_CASE, type CharsetCase } from './charset-cases.js';
import { StoredReceipts, storageFor } from './stored-receipts.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

const CASES = [...CHARSET_CASES, UNDECODABLE_CASE];
/** A model image no run gets to start: the suite runs without a consumer, the runs stay pending. */
const NEVER_RUN_IMAGE = 'dicomflow-test/charset-never-runs:1';

let stack: E2eStack;
let work: string;
let receipts: StoredReceipts;
const files = new Map<string, string>();

const patientId = (c: CharsetCase): string => `CHARSET-${c.name.toUpperCase()}`;
const flowName = (c: CharsetCase): string => `charset-${c.name}`;

/** A copy of `src` with `c`'s Specific Character Set, Patient ID and Patient's Name bytes. */
async function withCharset(src: string, dst: string, c: CharsetCase): Promise<void> {
  // Latin-1 maps bytes to characters one to one: the file gets the very bytes of the case.
  await withLongText(src, dst, '(0010,0010)', c.patientName.toString('latin1'));
  await runChecked('dcmodify', [
    '-q',
    '-nb',
    '-i',
    `(0008,0005)=${c.charset}`,
    '-i',
    `(0010,0020)=${patientId(c)}`,
    dst,
  ]);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'interop-charsets-'));
  const sources = await generateCtSeries(join(work, 'src'), CASES.length, {
    studyInstanceUid: newUid(),
    rows: 16,
    columns: 16,
  });
  for (const [i, c] of CASES.entries()) {
    const file = join(work, `${c.name}.dcm`);
    await withCharset(sources[i] ?? '', file, c);
    files.set(c.name, file);
  }
  stack = await startE2eStack({ consumer: false });
  receipts = new StoredReceipts(storageFor(stack.env), stack.env.S3_BUCKET_INCOMING ?? '');
}, 240_000);

afterAll(async () => {
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

function fileOf(c: CharsetCase): string {
  const file = files.get(c.name);
  if (file === undefined) throw new Error(`no file for ${c.name}`);
  return file;
}

/** A person name of the index in its DICOM form, trailing empty groups dropped (as flows match it). */
function personName(element: unknown): string {
  const value = (element as { Value?: Record<string, string>[] } | undefined)?.Value?.[0] ?? {};
  const groups = [value.Alphabetic ?? '', value.Ideographic ?? '', value.Phonetic ?? ''];
  while (groups.length > 0 && groups[groups.length - 1] === '') groups.pop();
  return groups.join('=');
}

function successes(output: string): number {
  return (output.match(/Received Store Response \(Success\)/g) ?? []).length;
}

describe('every character set through the suite', () => {
  it('stores each instance, indexes its decoded name and matches flows written in it', async () => {
    for (const c of CASES) {
      await stack.writeFlow(`${flowName(c)}.yaml`, {
        name: flowName(c),
        triggers: [{ PatientID: `^${patientId(c)}$`, PatientName: c.trigger }],
        models: [{ docker_kwargs: { image: NEVER_RUN_IMAGE } }],
      });
    }
    // The JIS X 0208 bytes of 山田 read as ASCII: only a name left undecoded would match.
    await stack.writeFlow('charset-undecoded.yaml', {
      name: 'charset-undecoded',
      triggers: [{ PatientID: '^CHARSET-ANNEX-H1$', PatientName: ';3ED' }],
      models: [{ docker_kwargs: { image: NEVER_RUN_IMAGE } }],
    });

    const sent = await storescu({
      port: stack.aePort,
      calledAe: AE_TITLE,
      files: CASES.map(fileOf),
      extraArgs: ['-v'],
    });
    expect(sent.code, sent.stderr).toBe(0);
    expect(successes(sent.stdout + sent.stderr)).toBe(CASES.length);

    for (const c of CASES) {
      const file = fileOf(c);
      const { sopInstanceUid } = await readFileMeta(file);
      const stored = await receipts.waitFor(sopInstanceUid);
      const name = stored.entry.elements['00100010'] as { Undecodable?: boolean } | undefined;
      expect(personName(name), c.name).toBe(c.decoded);
      expect(name?.Undecodable, c.name).toBe(c === UNDECODABLE_CASE ? true : undefined);
      expect(stored.entry.elements['00080005'], c.name).toEqual({ vr: 'CS', Value: c.charset.split('\\') });
      // Stored as sent: the same dataset bytes, whatever they spell.
      const member = await receipts.member(stored);
      const original = await readFile(file);
      expect(
        member.subarray(datasetOffset(member)).equals(original.subarray(datasetOffset(original))),
        c.name,
      ).toBe(true);
      const [run] = await stack.waitForRuns(flowName(c), 1, () => true);
      expect(run?.receiptId, c.name).toBe(stored.receiptId);
    }
    // Every flow saw the receipt by now (the runs above come from it): the undecoded bytes matched nothing.
    expect(await stack.runs('charset-undecoded')).toEqual([]);
  });

  it('is stored by dcmtk storescp too', async () => {
    const port = await freePort();
    const dcmtk = await startDcmtkStorescp({ port, outDir: join(work, 'dcmtk'), bitPreserving: false });
    try {
      const sent = await storescu({
        port,
        calledAe: 'STORESCP',
        files: CASES.map(fileOf),
        extraArgs: ['-v'],
      });
      expect(sent.code, sent.stderr).toBe(0);
      expect(successes(sent.stdout + sent.stderr)).toBe(CASES.length);
    } finally {
      await dcmtk.stop();
    }
  });
});

// Malformed DICOM sent to the receiver while a good study is on its way through the suite (issue 16): cut
// short datasets, wrong value lengths, undefined lengths where none is allowed, a 0-byte dataset, random
// bytes after a valid header and PDUs that lie about their length, each on an association of its own. Each
// gets a clear refusal (a C-STORE failure status or an A-ABORT), none is stored, the good study is
// delivered whole and every service stays up. Then a valid 1 GiB instance streams through with flat memory.
import { mkdtemp, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readInstanceFile, StoreAssociation } from '@dicomflow/dicom';
import {
  buildTestModelImage,
  COPY_MODEL,
  datasetDigest,
  echoscu,
  generateCtSeries,
  newUid,
  nodelayShimPath,
  readFileMeta,
  storescu,
  truncatedCopy,
} from '@dicomflow/test-helpers';
import { startDestination, type DcmtkDestination } from './support/destination.js';
import { AE_TITLE, isDone, startE2eStack, type E2eStack, E2E_TEST_TIMEOUT_MS } from './support/e2e-stack.js';
import { tellLie, type PduLie } from './support/lying-pdus.js';
import {
  withEmptyDataset,
  withRandomTail,
  withUndefinedLength,
  withWrongLength,
  writeLargeInstance,
} from './support/malformed-dicom.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

const GOOD_INSTANCES = 20;
const GOOD_ID = 'E2E-BAD-DICOM-GOOD';
const BAD_ID = 'E2E-BAD-DICOM-BAD';
const LARGE_ID = 'E2E-BAD-DICOM-LARGE';
/**
 * Pixel data of the large instance. 1 GiB took 64-91 s on a 2-core machine (shared with other work) from
 * its first byte sent to its delivery; 75-106 s for the whole test, with writing and hashing it.
 */
const LARGE_PIXEL_BYTES = 1024 ** 3;
/**
 * Copies of the large instance on disk at once, at most: the source, the spool, incoming and runs in S3,
 * the consumer's input and output, the sender's spool and the destination.
 */
const LARGE_COPIES = 8;
/**
 * Peak resident memory the receiver, consumer and sender may each reach while the large instance goes
 * through (measured: 160-200 MiB): far below the instance, so none holds it whole.
 */
const PEAK_MAX_MIB = 320;
/** Seconds before the receiver aborts a silent association (the PDU that never completes). */
const IDLE_TIMEOUT_S = 20;
const MIB = 1024 * 1024;
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

let stack: E2eStack;
let work: string;
let shim: string;
let destination: DcmtkDestination;
let copyImage: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-bad-dicom-'));
  shim = await nodelayShimPath(work);
  destination = await startDestination(work, shim);
  stack = await startE2eStack({ env: { ASSOCIATION_IDLE_TIMEOUT: String(IDLE_TIMEOUT_S) } });
  copyImage = await buildTestModelImage(COPY_MODEL);
}, 240_000);

afterAll(async () => {
  await stack.close();
  await destination.process.stop();
  await rm(work, { recursive: true, force: true });
});

/** SOP Instance UIDs of the files at the destination (dcmtk names them itself), with their paths. */
async function receivedUids(): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const name of await readdir(destination.dir).catch(() => [] as string[])) {
    const path = join(destination.dir, name);
    const meta = await readFileMeta(path).catch(() => undefined);
    if (meta) found.set(meta.sopInstanceUid, path);
  }
  return found;
}

/**
 * Sends one file on an association of its own with the repo's C-STORE SCU, which streams the dataset
 * bytes as they are on disk (never parsed, never whole in memory); returns the response.
 */
async function storeOne(path: string): Promise<{ status: number; errorComment?: string }> {
  const instance = await readInstanceFile(path);
  const association = await StoreAssociation.open({
    host: '127.0.0.1',
    port: stack.aePort,
    callingAeTitle: 'BAD-DICOM',
    calledAeTitle: AE_TITLE,
    contexts: [{ id: 1, abstractSyntax: instance.sopClassUid, transferSyntaxes: [EXPLICIT_LE] }],
    timeoutMs: 300_000,
  });
  try {
    const { status, errorComment } = await association.store(instance, 1);
    return { status, ...(errorComment === undefined ? {} : { errorComment }) };
  } finally {
    await association.release();
  }
}

/** The receiver's counter `dicomflow_storescp_<name>` with (at least) `labels`, from its /metrics. */
async function receiverCounter(name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  const text = await (await fetch(`${stack.urls.storescp ?? ''}/metrics`)).text();
  for (const line of text.split('\n')) {
    const sample = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (sample?.[1] !== `dicomflow_storescp_${name}`) continue;
    const found = new Map([...(sample[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => found.get(key) === value)) return Number(sample[3]);
  }
  return 0;
}

/** Every service answers /readyz with 200 and none has exited. */
async function expectAllUp(): Promise<void> {
  const statuses: Record<string, number> = {};
  for (const [service, url] of Object.entries(stack.urls))
    statuses[service] = (await fetch(`${url}/readyz`)).status;
  expect(Object.keys(statuses)).toHaveLength(7);
  expect(
    Object.values(statuses).every((status) => status === 200),
    JSON.stringify(statuses),
  ).toBe(true);
  expect(stack.exits).toEqual([]);
}

/** Peak resident memory of a service since {@link resetPeak} (Linux: VmHWM, reset through clear_refs). */
async function peakMib(service: string): Promise<number> {
  const status = await readFile(`/proc/${stack.pid(service) ?? 0}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

async function resetPeak(service: string): Promise<void> {
  await writeFile(`/proc/${stack.pid(service) ?? 0}/clear_refs`, '5');
}

function flow(name: string, patientId: string): Readonly<Record<string, unknown>> {
  return {
    name,
    triggers: [{ PatientID: `^${patientId}$` }],
    models: [{ docker_kwargs: { image: copyImage }, timeout: 900 }],
    destinations: [{ host: '127.0.0.1', port: destination.port, ae_title: 'DEST' }],
  };
}

const CANNOT_UNDERSTAND = 0xc000;
const DOES_NOT_MATCH_SOP_CLASS = 0xa900;
/** A-ABORT from the service provider: invalid PDU parameter value, or reason not specified. */
const ABORT_INVALID_PDU = [0x07, 0, 0, 2, 6];
const ABORT_NOT_SPECIFIED = [0x07, 0, 0, 2, 0];

/** Each malformed instance (built from a fixture) and the answer it must get. */
const MALFORMED: ReadonlyArray<{
  readonly name: string;
  readonly build: (src: string, dst: string) => Promise<void>;
  readonly status: number;
  readonly comment: RegExp;
}> = [
  {
    name: 'truncated',
    build: async (src, dst) => truncatedCopy(src, dst, (await stat(src)).size - 100),
    status: CANNOT_UNDERSTAND,
    comment: /^dataset ends 100 bytes before the end of a value$/,
  },
  {
    name: 'wrong-length-name',
    build: (src, dst) => withWrongLength(src, dst, 'name'),
    status: CANNOT_UNDERSTAND,
    comment: /^dataset ends \d+ bytes before the end of a value$/,
  },
  {
    name: 'wrong-length-pixels',
    build: (src, dst) => withWrongLength(src, dst, 'pixels'),
    status: CANNOT_UNDERSTAND,
    comment: /^dataset ends 512 bytes before the end of a value$/,
  },
  {
    name: 'undefined-length-text',
    build: (src, dst) => withUndefinedLength(src, dst, 'text'),
    status: CANNOT_UNDERSTAND,
    comment: /^undefined length on a UT element at offset \d+$/,
  },
  {
    name: 'undefined-length-pixels',
    build: (src, dst) => withUndefinedLength(src, dst, 'pixels'),
    status: CANNOT_UNDERSTAND,
    comment: /^expected an item at offset \d+, found \(0000,0000\)$/,
  },
  {
    name: 'empty-dataset',
    build: withEmptyDataset,
    status: DOES_NOT_MATCH_SOP_CLASS,
    comment: /^required element SOPClassUID is missing or empty$/,
  },
  {
    name: 'random-tail-16',
    build: (src, dst) => withRandomTail(src, dst, 16, 3),
    status: CANNOT_UNDERSTAND,
    comment: /^dataset ends \d+ bytes before the end of a value$/,
  },
  {
    name: 'random-tail-64k',
    build: (src, dst) => withRandomTail(src, dst, 64 * 1024, 1),
    status: CANNOT_UNDERSTAND,
    comment: /^dataset ends \d+ bytes before the end of a value$/,
  },
  {
    name: 'random-tail-1m',
    build: (src, dst) => withRandomTail(src, dst, MIB, 2),
    status: CANNOT_UNDERSTAND,
    comment: /^dataset ends \d+ bytes before the end of a value$/,
  },
];

/** Each lie about a PDU's length and the answer it must get before the receiver closes the connection. */
const LIES: ReadonlyArray<{ readonly lie: PduLie; readonly answer: number[] }> = [
  { lie: 'pdv-overruns-pdu', answer: ABORT_INVALID_PDU },
  { lie: 'pdu-longer-than-pdvs', answer: ABORT_INVALID_PDU },
  { lie: 'pdu-over-limit', answer: ABORT_INVALID_PDU },
  { lie: 'pdu-never-completed', answer: ABORT_NOT_SPECIFIED },
  { lie: 'associate-rq-cut', answer: ABORT_INVALID_PDU },
];

describe('malformed DICOM while a study is in flight', () => {
  it('refuses each bad instance and lying PDU clearly, stores none, and delivers the good study', async () => {
    await stack.writeFlow('good.yaml', flow('good', GOOD_ID));
    // Would match any bad instance that got stored: none may be.
    await stack.writeFlow('bad.yaml', flow('bad', BAD_ID));
    const good = await generateCtSeries(join(work, 'good'), GOOD_INSTANCES, {
      patientId: GOOD_ID,
      studyInstanceUid: newUid(),
      rows: 16,
      columns: 16,
    });
    const sources = await generateCtSeries(join(work, 'bad-sources'), MALFORMED.length, {
      patientId: BAD_ID,
      studyInstanceUid: newUid(),
      rows: 16,
      columns: 16,
    });
    const badFiles = await Promise.all(
      MALFORMED.map(async ({ name, build }, i) => {
        const file = join(work, `${name}.dcm`);
        await build(sources[i] ?? '', file);
        return file;
      }),
    );

    const sending = storescu({
      port: stack.aePort,
      calledAe: AE_TITLE,
      files: good,
      env: { ...process.env, LD_PRELOAD: shim },
    });
    // Each on an association of its own, all at once, while the good study is being sent.
    const [answers, lies] = await Promise.all([
      Promise.all(badFiles.map(storeOne)),
      Promise.all(LIES.map(({ lie }) => tellLie(stack.aePort, AE_TITLE, lie, (IDLE_TIMEOUT_S + 30) * 1000))),
    ]);
    const sent = await sending;
    expect(sent.code, sent.stderr).toBe(0);

    for (const [i, { name, status, comment }] of MALFORMED.entries()) {
      expect({ name, status: answers[i]?.status }).toEqual({ name, status });
      expect(answers[i]?.errorComment, name).toMatch(comment);
    }
    for (const [i, { lie, answer }] of LIES.entries())
      expect({ lie, ...lies[i] }).toEqual({ lie, answers: [answer], ended: 'closed' });

    const [run] = await stack.waitForRuns('good', 1, isDone, 300_000);
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    const goodUids = await Promise.all(good.map(async (file) => (await readFileMeta(file)).sopInstanceUid));
    expect([...(await receivedUids()).keys()].sort()).toEqual(goodUids.sort());
    // Nothing of the bad ones was stored, published or run.
    expect(await stack.runs('bad')).toEqual([]);
    expect(await receiverCounter('instances_stored_total')).toBe(GOOD_INSTANCES);
    expect(await receiverCounter('receipts_published_total')).toBe(1);
    expect(await receiverCounter('instances_refused_total', { status: 'c000' })).toBe(MALFORMED.length - 1);
    expect(await receiverCounter('instances_refused_total', { status: 'a900' })).toBe(1);
    await expectAllUp();
    expect((await echoscu({ port: stack.aePort, calledAe: AE_TITLE })).code).toBe(0);
  });

  it('receives a valid 1 GiB instance with flat memory and delivers it byte for byte', async () => {
    const { bavail, bsize } = await statfs(work);
    const needed = LARGE_COPIES * LARGE_PIXEL_BYTES;
    expect(bavail * bsize, `free bytes in ${work} (needs ${needed})`).toBeGreaterThan(needed);
    await stack.writeFlow('large.yaml', flow('large', LARGE_ID));
    const [source] = await generateCtSeries(join(work, 'large-source'), 1, {
      patientId: LARGE_ID,
      studyInstanceUid: newUid(),
      rows: 16,
      columns: 16,
    });
    const large = join(work, 'large.dcm');
    await writeLargeInstance(source ?? '', large, LARGE_PIXEL_BYTES);
    const digest = await datasetDigest(large);
    const { sopInstanceUid } = await readFileMeta(large);
    const watched = ['storescp', 'consumer', 'sender'];
    for (const service of watched) await resetPeak(service);

    const started = Date.now();
    expect(await storeOne(large)).toEqual({ status: 0 });
    const [run] = await stack.waitForRuns('large', 1, isDone, 900_000);
    const seconds = (Date.now() - started) / 1000;
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    const peaks: Record<string, number> = {};
    for (const service of watched) peaks[service] = await peakMib(service);
    console.info('large instance', JSON.stringify({ bytes: LARGE_PIXEL_BYTES, seconds, peakMib: peaks }));
    for (const service of watched) expect(peaks[service], service).toBeLessThan(PEAK_MAX_MIB);

    const delivered = (await receivedUids()).get(sopInstanceUid);
    expect(delivered).toBeDefined();
    expect(await datasetDigest(delivered ?? '')).toBe(digest);
    await expectAllUp();
    await rm(large);
    await rm(delivered ?? '', { force: true });
  }, 1_200_000);
});

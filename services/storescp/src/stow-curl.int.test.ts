import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildPart10Prefix, datasetOffset, inspectPart10Buffer } from '@dicomflow/dicom';
import type { StudyReceived } from '@dicomflow/messages';
import {
  generateCtSeries,
  metricValue,
  newUid,
  readMetrics,
  truncatedCopy,
  waitFor,
  withMissingTag,
} from '@dicomflow/test-helpers';
import { readReceipt, startReceiver, type Receiver } from './testing/receiver-harness.js';
import { curlPost, multipartRelated, type CurlAnswer } from './testing/stow-curl.js';

const TOKEN = 'stow-test-token-0123456789';
const BOUNDARY = 'stow boundary:1';
const CONTENT_TYPE = `Content-Type: multipart/related; type="application/dicom"; boundary="${BOUNDARY}"`;
const AUTHORIZATION = `Authorization: Bearer ${TOKEN}`;
// Fixtures: 64x64 slices are ~9 KB; a 256x256 one is ~130 KB, over the instance bound below.
const MAX_INSTANCE_BYTES = 100_000;
const MAX_REQUEST_BYTES = 400_000;

let work: string;
let receiver: Receiver;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-stow-curl-'));
  receiver = await startReceiver({
    STOW_TOKEN: TOKEN,
    STOW_MAX_INSTANCE_BYTES: String(MAX_INSTANCE_BYTES),
    STOW_MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES),
    // A stalled upload is cut after this many seconds (tested below).
    ASSOCIATION_IDLE_TIMEOUT: '3',
    // As for associations: this address is turned away (403), whatever its token.
    DENIED_HOSTS: '127.0.0.2',
  });
});

afterAll(async () => {
  await receiver.close();
  await rm(work, { recursive: true, force: true });
});

// Whatever a request did, no instance file is left half-received in the spool.
afterEach(async () => {
  expect(await readdir(join(receiver.spoolDir, 'incoming'))).toEqual([]);
});

let fixtureCount = 0;
async function ctFiles(count: number, studyInstanceUid = newUid(), size = 64): Promise<string[]> {
  return generateCtSeries(join(work, `fixture-${++fixtureCount}`), count, {
    studyInstanceUid,
    rows: size,
    columns: size,
  });
}

function post(
  body: Buffer,
  opts: { path?: string; headers?: string[]; chunked?: boolean; from?: string } = {},
): Promise<CurlAnswer> {
  return curlPost({
    url: `http://127.0.0.1:${receiver.stowPort}${opts.path ?? '/studies'}`,
    body,
    headers: opts.headers ?? [CONTENT_TYPE, AUTHORIZATION],
    work,
    chunked: opts.chunked,
    from: opts.from,
  });
}

interface Reference {
  sopInstanceUid: string;
  failureReason?: number;
}

/** The SOP instances a Store Instances response lists as stored and as failed. */
function answerOf(answer: CurlAnswer): { stored: Reference[]; failed: Reference[] } {
  expect(answer.headers.get('content-type')).toMatch(/^application\/dicom\+json/);
  type Item = Record<string, { Value?: unknown[] }>;
  const json = JSON.parse(answer.body) as Record<string, { Value?: Item[] }>;
  const refs = (tag: string): Reference[] =>
    (json[tag]?.Value ?? []).map((item) => ({
      sopInstanceUid: (item['00081155']?.Value?.[0] as string | undefined) ?? '',
      ...(item['00081197'] ? { failureReason: Number(item['00081197'].Value?.[0]) } : {}),
    }));
  return { stored: refs('00081199'), failed: refs('00081198') };
}

/** The `error` of a JSON error answer. */
function errorOf(answer: CurlAnswer): string {
  return (JSON.parse(answer.body) as { error: string }).error;
}

/** The receipt holding the study of `file`, once it is published (each test sends studies of its own). */
async function receiptOf(from: Receiver, file: string): Promise<StudyReceived> {
  const { studyInstanceUid } = inspectPart10Buffer(await readFile(file), { validate: false });
  const find = (): StudyReceived | undefined =>
    from.receipts.messages.find((m) => m.studies.some((s) => s.studyInstanceUid === studyInstanceUid));
  await waitFor(() => find() !== undefined, `the receipt of study ${studyInstanceUid}`);
  const found = find();
  if (!found) throw new Error(`no receipt of study ${studyInstanceUid}`);
  return found;
}

async function sopInstanceUidOf(path: string): Promise<string> {
  return inspectPart10Buffer(await readFile(path), { validate: false }).sopInstanceUid;
}

/** A counter of the receiver, from its /metrics. */
async function metric(name: string): Promise<number> {
  return metricValue(await readMetrics(receiver.service.ports().http), name);
}
const STORED = 'dicomflow_storescp_stow_instances_stored_total';

describe('STOW-RS from curl', () => {
  it('stores a study and answers 200; its receipt holds the same instances, dataset bytes as sent', async () => {
    const studyInstanceUid = newUid();
    const files = await ctFiles(3, studyInstanceUid);
    const originals = await Promise.all(files.map((f) => readFile(f)));
    const answer = await post(multipartRelated(originals, BOUNDARY), {
      path: `/studies/${studyInstanceUid}`,
    });
    expect(answer.status, answer.body).toBe(200);
    const { stored, failed } = answerOf(answer);
    const uids = await Promise.all(files.map(sopInstanceUidOf));
    expect(stored.map((s) => s.sopInstanceUid).sort()).toEqual([...uids].sort());
    expect(failed).toEqual([]);
    expect(await metric(STORED)).toBeGreaterThanOrEqual(3); // what the refusals below compare with

    const message = await receiptOf(receiver, files[0] ?? '');
    expect(message).toMatchObject({
      callingAeTitle: 'STOW-RS',
      calledAeTitle: 'STORESCP',
      callingHost: '127.0.0.1',
      instanceCount: 3,
      studies: [{ studyInstanceUid }],
    });
    const { index, members } = await readReceipt(receiver.storage, message);
    expect(index.instances.map((i) => i.sopInstanceUid).sort()).toEqual([...uids].sort());
    for (const [i, original] of originals.entries()) {
      const entry = index.instances.find((e) => e.sopInstanceUid === uids[i]);
      const member = members.get(entry?.member ?? '') ?? Buffer.alloc(0);
      expect(member.subarray(datasetOffset(member)).equals(original.subarray(datasetOffset(original)))).toBe(
        true,
      );
    }
  });

  it('takes a body sent chunked, without Content-Length', async () => {
    const files = await ctFiles(2);
    const body = multipartRelated(await Promise.all(files.map((f) => readFile(f))), BOUNDARY);
    const answer = await post(body, { chunked: true });
    expect(answer.status, answer.body).toBe(200);
    expect(answerOf(answer).stored).toHaveLength(2);
    expect((await receiptOf(receiver, files[0] ?? '')).instanceCount).toBe(2);
  });

  it('answers 401 without a token and with a wrong one, before reading the body', async () => {
    const body = multipartRelated([await readFile((await ctFiles(1))[0] ?? '')], BOUNDARY);
    const storedBefore = await metric(STORED);
    for (const headers of [[CONTENT_TYPE], [CONTENT_TYPE, 'Authorization: Bearer wrong-token']]) {
      const answer = await post(body, { headers });
      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="storescp"');
      expect(JSON.parse(answer.body)).toEqual({
        error: 'missing or wrong token: send "Authorization: Bearer <STOW_TOKEN>"',
      });
    }
    expect(await metric(STORED)).toBe(storedBefore);
  });

  it('answers 403 to a host DENIED_HOSTS names, even with the token', async () => {
    const body = multipartRelated([await readFile((await ctFiles(1))[0] ?? '')], BOUNDARY);
    const answer = await post(body, { from: '127.0.0.2' });
    expect(answer.status, answer.stderr).toBe(403);
    expect(errorOf(answer)).toBe('host not allowed');
  });

  const MUST_BE = /^the body must be multipart\/related; type="application\/dicom"$/;
  it.each([
    ['a single application/dicom body', 'Content-Type: application/dicom', 415, MUST_BE],
    ['multipart/form-data', `Content-Type: multipart/form-data; boundary="${BOUNDARY}"`, 415, MUST_BE],
    [
      'multipart/related of JSON metadata',
      `Content-Type: multipart/related; type="application/dicom+json"; boundary=x`,
      415,
      /^only Part-10 instances are accepted/,
    ],
    [
      'multipart/related without a boundary',
      'Content-Type: multipart/related; type="application/dicom"',
      400,
      /no valid boundary parameter/,
    ],
  ])('refuses %s', async (_name, contentType, status, message) => {
    const body = multipartRelated([await readFile((await ctFiles(1))[0] ?? '')], BOUNDARY);
    const storedBefore = await metric(STORED);
    const answer = await post(body, { headers: [contentType, AUTHORIZATION] });
    expect(answer.status).toBe(status);
    expect(errorOf(answer)).toMatch(message);
    expect(await metric(STORED)).toBe(storedBefore);
  });

  it.each([
    ['without its closing boundary', (b: Buffer) => b.subarray(0, b.lastIndexOf(`--${BOUNDARY}--`) - 2)],
    ['that is not multipart at all', () => Buffer.from('this is not a multipart body')],
  ])('answers 400 to a body %s', async (_name, mangle) => {
    const files = await ctFiles(1);
    const answer = await post(mangle(multipartRelated([await readFile(files[0] ?? '')], BOUNDARY)));
    expect(answer.status).toBe(400);
    expect(errorOf(answer)).toMatch(/^malformed multipart body: /);
  });

  it('answers 202 naming the instances that fail the checks and why; only the good one is in the receipt', async () => {
    const [good, source] = await ctFiles(2);
    if (!good || !source) throw new Error('no fixture');
    const truncated = join(work, 'truncated.dcm');
    await truncatedCopy(source, truncated, (await readFile(source)).length - 1000);
    const noSopInstance = join(work, 'no-sop-instance.dcm');
    await withMissingTag(source, noSopInstance, 'SOPInstanceUID');
    const big = (await ctFiles(1, newUid(), 256))[0] ?? '';
    const parts = await Promise.all([good, truncated, noSopInstance, big].map((f) => readFile(f)));

    const answer = await post(multipartRelated(parts, BOUNDARY));
    expect(answer.status, answer.body).toBe(202);
    const { stored, failed } = answerOf(answer);
    const goodUid = await sopInstanceUidOf(good);
    expect(stored).toEqual([{ sopInstanceUid: goodUid }]);
    expect(failed).toEqual([
      { sopInstanceUid: await sopInstanceUidOf(source), failureReason: 0xc000 }, // truncated: cannot understand
      { sopInstanceUid: await sopInstanceUidOf(source), failureReason: 0xa900 }, // no SOP Instance UID
      { sopInstanceUid: await sopInstanceUidOf(big), failureReason: 0xa700 }, // over STOW_MAX_INSTANCE_BYTES
    ]);
    const { index } = await readReceipt(receiver.storage, await receiptOf(receiver, good));
    expect(index.instances.map((i) => i.sopInstanceUid)).toEqual([goodUid]);
  });

  it('answers 409 when no instance is stored', async () => {
    const [source] = await ctFiles(1);
    const truncated = join(work, 'truncated-only.dcm');
    await truncatedCopy(source ?? '', truncated, 400);
    const answer = await post(multipartRelated([await readFile(truncated)], BOUNDARY));
    expect(answer.status).toBe(409);
    expect(answerOf(answer).failed).toEqual([
      { sopInstanceUid: await sopInstanceUidOf(source ?? ''), failureReason: 0xc000 },
    ]);
  });

  it('refuses a transfer syntax it cannot walk (C122) and a SOP class that is not for storage (0122)', async () => {
    const [file] = await ctFiles(1);
    const original = await readFile(file ?? '');
    const { sopClassUid, sopInstanceUid } = inspectPart10Buffer(original, { validate: false });
    const dataset = original.subarray(datasetOffset(original));
    const unknownSyntax = Buffer.concat([
      buildPart10Prefix({ sopClassUid, sopInstanceUid, transferSyntaxUid: '1.2.826.0.1.3680043.9.9999.2' }),
      dataset,
    ]);
    const worklist = Buffer.concat([
      buildPart10Prefix({
        sopClassUid: '1.2.840.10008.5.1.4.31', // Modality Worklist Information Model - FIND
        sopInstanceUid,
        transferSyntaxUid: '1.2.840.10008.1.2.1',
      }),
      dataset,
    ]);
    const answer = await post(multipartRelated([unknownSyntax, worklist], BOUNDARY));
    expect(answer.status).toBe(409);
    expect(answerOf(answer).failed).toEqual([
      { sopInstanceUid, failureReason: 0xc122 },
      { sopInstanceUid, failureReason: 0x0122 },
    ]);
  });

  it('refuses, on /studies/{uid}, the instances of another study (FailureReason C409)', async () => {
    const studyInstanceUid = newUid();
    const [ours] = await ctFiles(1, studyInstanceUid);
    const [other] = await ctFiles(1);
    if (!ours || !other) throw new Error('no fixture');
    const answer = await post(multipartRelated([await readFile(ours), await readFile(other)], BOUNDARY), {
      path: `/studies/${studyInstanceUid}`,
    });
    expect(answer.status).toBe(202);
    const { stored, failed } = answerOf(answer);
    expect(stored).toEqual([{ sopInstanceUid: await sopInstanceUidOf(ours) }]);
    expect(failed).toEqual([{ sopInstanceUid: await sopInstanceUidOf(other), failureReason: 0xc409 }]);
    const message = await receiptOf(receiver, ours);
    expect(message.studies.map((s) => s.studyInstanceUid)).toEqual([studyInstanceUid]);

    const alone = await post(multipartRelated([await readFile(other)], BOUNDARY), {
      path: `/studies/${studyInstanceUid}`,
    });
    expect(alone.status).toBe(409);
  });

  it('answers 413 to a body over STOW_MAX_REQUEST_BYTES, with or without Content-Length', async () => {
    const files = await ctFiles(50); // ~450 KB
    const body = multipartRelated(await Promise.all(files.map((f) => readFile(f))), BOUNDARY);
    expect(body.length).toBeGreaterThan(MAX_REQUEST_BYTES);
    const storedBefore = await metric(STORED);
    const declared = await post(body);
    expect(declared.status, declared.stderr).toBe(413);
    expect(JSON.parse(declared.body)).toEqual({
      error: `the request body is larger than STOW_MAX_REQUEST_BYTES (${MAX_REQUEST_BYTES})`,
    });
    // Refused before a byte of it was read: nothing stored.
    expect(await metric(STORED)).toBe(storedBefore);

    const chunked = await post(body, { chunked: true });
    expect(chunked.status, chunked.stderr).toBe(413);
    expect(errorOf(chunked)).toMatch(
      /^the request body is larger than STOW_MAX_REQUEST_BYTES .*instance\(s\) stored before it are kept/,
    );
  });
});

describe('STOW-RS from a client that stalls', () => {
  it('closes the idle connection, keeps the instances received whole and drops the one cut short', async () => {
    const [first, second] = await ctFiles(2);
    if (!first || !second) throw new Error('no fixture');
    const parts = [await readFile(first), await readFile(second)];
    const body = multipartRelated(parts, BOUNDARY);
    const socket = connect(receiver.stowPort, '127.0.0.1');
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(
      [
        'POST /studies HTTP/1.1',
        `Host: 127.0.0.1:${receiver.stowPort}`,
        CONTENT_TYPE,
        AUTHORIZATION,
        `Content-Length: ${body.length}`,
        '',
        '',
      ].join('\r\n'),
    );
    // The first instance whole, half of the second, then nothing more.
    socket.write(body.subarray(0, body.length - Math.floor((parts[1]?.length ?? 0) / 2)));
    await closed;

    const { index } = await readReceipt(receiver.storage, await receiptOf(receiver, first));
    expect(index.instances.map((i) => i.sopInstanceUid)).toEqual([await sopInstanceUidOf(first)]);
  });
});

describe('STOW-RS with the spool full', () => {
  let spool: string;
  let full: Receiver;

  beforeAll(async () => {
    spool = join(work, 'small-spool');
    await mkdir(spool);
    // A spool of its own on a small tmpfs, so that filling it touches nothing else.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', spool]);
    full = await startReceiver({ STOW_TOKEN: TOKEN, SPOOL_DIR: spool });
  });

  afterAll(async () => {
    await full.close();
    execFileSync('umount', [spool]);
  });

  it('fails each instance with A700 while the disk is full (409), and stores again once there is room', async () => {
    const files = await ctFiles(2);
    const body = multipartRelated(await Promise.all(files.map((f) => readFile(f))), BOUNDARY);
    const uids = await Promise.all(files.map(sopInstanceUidOf));
    const url = `http://127.0.0.1:${full.stowPort}/studies`;
    const filler = join(spool, 'filler');
    await writeFile(filler, '');
    execFileSync('sh', ['-c', `dd if=/dev/zero of=${filler} bs=64k 2>/dev/null || true`]);

    const refused = await curlPost({ url, body, headers: [CONTENT_TYPE, AUTHORIZATION], work });
    expect(refused.status, refused.body).toBe(409);
    expect(answerOf(refused).failed).toEqual(
      uids.map((sopInstanceUid) => ({ sopInstanceUid, failureReason: 0xa700 })),
    );
    expect(await readdir(join(spool, 'incoming'))).toEqual([]);

    await rm(filler);
    const stored = await curlPost({ url, body, headers: [CONTENT_TYPE, AUTHORIZATION], work });
    expect(stored.status, stored.body).toBe(200);
    expect((await receiptOf(full, files[0] ?? '')).instanceCount).toBe(2);
  });
});

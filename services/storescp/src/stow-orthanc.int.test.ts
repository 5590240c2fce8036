import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetOffset, inspectPart10Buffer } from '@dicomflow/dicom';
import {
  generateCtSeries,
  metricValue,
  newUid,
  readMetrics,
  startOrthanc,
  storescu,
  type RunningOrthanc,
} from '@dicomflow/test-helpers';
import { readReceipt, startReceiver, type Receiver } from './testing/receiver-harness.js';

const TOKEN = 'orthanc-pushes-with-this-token';

let work: string;
let receiver: Receiver;
let orthanc: RunningOrthanc;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-stow-orthanc-'));
  receiver = await startReceiver({ STOW_TOKEN: TOKEN });
  orthanc = await startOrthanc({
    dicomWeb: {
      servers: {
        ours: {
          url: `http://127.0.0.1:${receiver.stowPort}/`,
          headers: { Authorization: `Bearer ${TOKEN}` },
        },
        'no-token': { url: `http://127.0.0.1:${receiver.stowPort}/` },
      },
    },
  });
});

afterAll(async () => {
  await orthanc.stop();
  await receiver.close();
  await rm(work, { recursive: true, force: true });
});

/** POSTs to Orthanc's REST API (a string as it is, anything else as JSON); the status and the parsed answer. */
async function orthancPost(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`http://127.0.0.1:${orthanc.httpPort}${path}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Orthanc's id of the study with this Study Instance UID. */
async function orthancStudyId(studyInstanceUid: string): Promise<string> {
  const found = await orthancPost('/tools/lookup', studyInstanceUid);
  const [study] = (found.json as { ID: string; Type: string }[]).filter((r) => r.Type === 'Study');
  if (!study) throw new Error(`Orthanc does not have study ${studyInstanceUid}`);
  return study.ID;
}

/** A counter of the receiver, from its /metrics. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue(await readMetrics(receiver.service.ports().http), name, labels);
}

describe("STOW-RS from Orthanc's DICOMweb plugin", () => {
  it('receives a study Orthanc pushes, as one receipt with the same instances and dataset bytes', async () => {
    const studyInstanceUid = newUid();
    const files = await generateCtSeries(join(work, 'ct'), 12, { studyInstanceUid, rows: 128, columns: 128 });
    const sent = await storescu({ port: orthanc.dicomPort, calledAe: orthanc.aeTitle, files });
    expect(sent.code, sent.stderr).toBe(0);
    const sopInstanceUids = await Promise.all(
      files.map(async (f) => inspectPart10Buffer(await readFile(f), { validate: false }).sopInstanceUid),
    );
    const before = receiver.receipts.messages.length;

    const stow = await orthancPost('/dicom-web/servers/ours/stow', {
      Resources: [await orthancStudyId(studyInstanceUid)],
      Synchronous: true,
    });
    expect(stow.status, JSON.stringify(stow.json)).toBe(200);

    const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
    if (!message) throw new Error('no receipt');
    expect(message).toMatchObject({
      callingAeTitle: 'STOW-RS',
      callingHost: '127.0.0.1',
      instanceCount: 12,
      studies: [{ studyInstanceUid, series: [{ instanceCount: 12 }] }],
    });
    const { index, members } = await readReceipt(receiver.storage, message);
    expect(index.instances.map((i) => i.sopInstanceUid).sort()).toEqual([...sopInstanceUids].sort());
    // What Orthanc pushed is what it stores: each receipt member has its dataset bytes.
    for (const { id, sopInstanceUid } of await orthanc.instances()) {
      const pushed = await orthanc.instanceFile(id);
      const entry = index.instances.find((i) => i.sopInstanceUid === sopInstanceUid);
      const member = members.get(entry?.member ?? '') ?? Buffer.alloc(0);
      expect(
        member.subarray(datasetOffset(member)).equals(pushed.subarray(datasetOffset(pushed))),
        sopInstanceUid,
      ).toBe(true);
    }
  });

  it('turns Orthanc away without the token (401), and nothing arrives', async () => {
    const stored = receiver.receipts.messages.length;
    const refusedBefore = await metric('dicomflow_storescp_stow_requests_total', { code: '401' });
    const storedBefore = await metric('dicomflow_storescp_stow_instances_stored_total');
    const [study] = (await (await fetch(`http://127.0.0.1:${orthanc.httpPort}/studies`)).json()) as string[];
    const stow = await orthancPost('/dicom-web/servers/no-token/stow', {
      Resources: [study],
      Synchronous: true,
    });
    // Orthanc reports the refusal as a failure of its own, without our status: that is in our metrics.
    expect(stow.status).toBeGreaterThanOrEqual(400);
    expect(await metric('dicomflow_storescp_stow_requests_total', { code: '401' })).toBe(refusedBefore + 1);
    // Refused before its body was read: nothing stored, no group opened, so none can complete.
    expect(await metric('dicomflow_storescp_stow_instances_stored_total')).toBe(storedBefore);
    expect(receiver.receipts.messages.length).toBe(stored);
  });
});

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetOffset } from '@dicomflow/dicom';
import { createStorage } from '@dicomflow/storage';
import {
  startCountingRelay,
  startMinio,
  type CountingRelay,
  type MinioProcess,
} from '@dicomflow/storage/testing';
import { generateCtSeries, newUid, readFileMeta, storescu, waitFor } from '@dicomflow/test-helpers';
import { readReceipt, startReceiver, type Receiver } from './testing/receiver-harness.js';

/*
 * S3 is killed (SIGKILL) while the receiver uploads a receipt as a multipart upload, and comes back: the
 * upload is retried, the study arrives once and whole, and no incomplete upload is left. A test about
 * parts: 5 MiB parts make the ~21 MB study five of them.
 */

const PART_SIZE = 5 * 1024 * 1024;
let work: string;
let minio: MinioProcess;
let relay: CountingRelay;
let receiver: Receiver;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-s3-outage-'));
  minio = await startMinio();
  relay = await startCountingRelay({ host: '127.0.0.1', port: minio.port });
  receiver = await startReceiver({
    S3_ENDPOINT: '127.0.0.1',
    S3_PORT: String(relay.port),
    S3_ACCESS_KEY: minio.config.accessKey,
    S3_SECRET_KEY: minio.config.secretKey,
    S3_PART_SIZE: String(PART_SIZE),
  });
});

afterAll(async () => {
  await receiver.close();
  await relay.close();
  await minio.close();
  await rm(work, { recursive: true, force: true });
});

describe('storescp when S3 dies during a multipart upload', () => {
  it('retries the upload: the study arrives once, whole, and no incomplete upload is left', async () => {
    const files = await generateCtSeries(join(work, 'ct'), 40, { studyInstanceUid: newUid() });
    const sent = await storescu({ port: receiver.port, calledAe: 'STORESCP', files });
    expect(sent.code).toBe(0);

    // Two parts and more have gone to S3: the upload is open on the server when S3 dies.
    await relay.sent(2 * PART_SIZE + 1024 * 1024);
    await minio.kill();
    await minio.restart();

    const [message] = await receiver.receipts.waitFor(1, 60_000);
    if (!message) throw new Error('no receipt');
    expect(message.instanceCount).toBe(40);
    const { index, members } = await readReceipt(receiver.storage, message);
    expect(members.size).toBe(40);
    for (const file of files) {
      const meta = await readFileMeta(file);
      const entry = index.instances.find((i) => i.sopInstanceUid === meta.sopInstanceUid);
      const stored = members.get(entry?.member ?? '') ?? Buffer.alloc(0);
      const original = await readFile(file);
      expect(stored.subarray(datasetOffset(stored)).equals(original.subarray(meta.datasetOffset))).toBe(true);
    }
    const direct = createStorage(minio.config);
    expect(await direct.incompleteUploads(message.bucket, message.tarKey)).toEqual([]);
    // Once the receipt is published its spool group is removed: nothing is left to publish again.
    await waitFor(
      async () => (await readdir(join(receiver.spoolDir, 'groups'))).length === 0,
      'the spool to empty',
    );
    expect(receiver.receipts.messages).toHaveLength(1);
  });
});

import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@dicomflow/config';
import { readDeliveredLines, type SendTarget } from '@dicomflow/messages';
import { createLogger } from '@dicomflow/runtime';
import { createStorage } from '@dicomflow/storage';
import { removeBucketAndObjects, testStorageConfig, uniqueBucketName } from '@dicomflow/storage/testing';
import { testEnvironment } from '@dicomflow/test-helpers';
import { AckStore } from '../db/ack-store.js';
import { migrate } from '../db/migrations.js';
import { createPool, type Pool } from '../db/pool.js';
import { deliveredManifestKey, writeDeliveredManifest } from './delivered-manifest.js';

const schema = `send_manifest_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
const logger = createLogger({ service: 'sender-test', level: 'silent' });
const storage = createStorage(testStorageConfig());
const bucket = uniqueBucketName('sender-manifest');
let pool: Pool;
let acks: AckStore;
let scratch: string;

beforeAll(async () => {
  const config = loadConfig('sender', { confDir: '/nonexistent-conf-dir', env: { ...testEnvironment() } });
  pool = createPool(config, logger);
  await migrate(pool, schema, logger);
  acks = new AckStore(pool, schema);
  await storage.ensureBucket(bucket);
  scratch = await mkdtemp(join(tmpdir(), 'sender-manifest-'));
});

afterAll(async () => {
  await removeBucketAndObjects(storage, bucket);
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  await rm(scratch, { recursive: true, force: true });
});

describe('delivered manifest', () => {
  it('lists every acknowledged instance per target, read page by page, and leaves no scratch file', async () => {
    const runId = randomUUID();
    const pacs: SendTarget = { kind: 'destination', host: 'pacs', port: 104, aeTitle: 'PACS' };
    const back: SendTarget = { kind: 'return-to-sender', host: 'ct', port: 11112, aeTitle: 'CT' };
    const uids = Array.from({ length: 12 }, (_, i) => `2.25.${i + 1}`);
    await acks.record(
      runId,
      'k-pacs',
      uids.map((sopInstanceUid, i) => ({
        member: `m${String(i).padStart(2, '0')}`,
        sopInstanceUid,
        status: 0,
      })),
    );
    await acks.record(runId, 'k-back', [{ member: 'm00', sopInstanceUid: '2.25.1', status: 0 }]);
    // Another run's acknowledgements stay out.
    await acks.record(randomUUID(), 'k-pacs', [{ member: 'm00', sopInstanceUid: '9.9', status: 0 }]);
    const pagedAcks = { ackedUids: (r: string, t: string) => acks.ackedUids(r, t, 5) };

    const location = await writeDeliveredManifest(
      { storage, acks: pagedAcks },
      {
        runId,
        bucket,
        targets: [
          { target: pacs, key: 'k-pacs' },
          { target: back, key: 'k-back' },
        ],
      },
      scratch,
    );

    expect(location).toEqual({ bucket, key: `${runId}/delivered.jsonl` });
    const lines = [];
    for await (const line of readDeliveredLines(await storage.getStream(bucket, location.key)))
      lines.push(line);
    expect(lines).toEqual([
      ...uids.map((sopInstanceUid) => ({ sopInstanceUid, target: 'PACS@pacs:104' })),
      { sopInstanceUid: '2.25.1', target: 'CT@ct:11112' },
    ]);
    expect(await readdir(scratch)).toEqual([]);
    expect(deliveredManifestKey(runId, 'r1')).toBe(`${runId}/delivered-r1.jsonl`);
  });
});

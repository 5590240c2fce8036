// A study whose receipt index is larger than the 64 MiB that the consumer once read whole (it then failed
// such a study late, after it had been accepted and matched): the index is written and read line by line
// by every service, so the run reaches status 4. The index is made large through long header values (each
// instance carries a 1 MiB text value, kept whole with INDEX_MAX_VALUE_BYTES=1 MiB) rather than through
// tens of thousands of instances, which bench/scale covers.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createStorage } from '@dicomflow/storage';
import {
  buildTestModelImage,
  COPY_MODEL,
  generateCtSeries,
  newUid,
  nodelayShimPath,
  storescu,
  testStorageConfig,
  withLongText,
} from '@dicomflow/test-helpers';
import { startDestination, type DcmtkDestination } from './support/destination.js';
import { AE_TITLE, isDone, startE2eStack, type E2eStack, E2E_TEST_TIMEOUT_MS } from './support/e2e-stack.js';

vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });

const MIB = 1024 * 1024;
const INSTANCES = 72;

let stack: E2eStack;
let work: string;
let shim: string;
let destination: DcmtkDestination;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'e2e-large-index-'));
  shim = await nodelayShimPath(work);
  destination = await startDestination(work, shim);
  stack = await startE2eStack({ env: { INDEX_MAX_VALUE_BYTES: String(MIB) } });
}, 240_000);

afterAll(async () => {
  await stack.close();
  await destination.process.stop();
  await rm(work, { recursive: true, force: true });
});

describe('a receipt index over 64 MiB', () => {
  it('is matched, staged and delivered: the run reaches status 4', async () => {
    const copyImage = await buildTestModelImage(COPY_MODEL);
    await stack.writeFlow('large-index.yaml', {
      name: 'large-index',
      triggers: [{ PatientID: '^E2E-LARGE-INDEX$', TextValue: '^x+$' }],
      models: [{ docker_kwargs: { image: copyImage }, timeout: 600 }],
      destinations: [{ host: '127.0.0.1', port: destination.port, ae_title: 'DEST' }],
    });
    const sources = await generateCtSeries(join(work, 'source'), INSTANCES, {
      patientId: 'E2E-LARGE-INDEX',
      studyInstanceUid: newUid(),
      rows: 16,
      columns: 16,
    });
    // One 1 MiB TextValue (0040,A160) per instance: no spaces, so trimming keeps it whole in the index.
    const files: string[] = [];
    for (const [i, source] of sources.entries()) {
      const file = join(work, `long-${i}.dcm`);
      await withLongText(source, file, '(0040,a160)', 'x'.repeat(MIB));
      files.push(file);
    }
    const sent = await storescu({
      port: stack.aePort,
      calledAe: AE_TITLE,
      files,
      env: { ...process.env, LD_PRELOAD: shim },
    });
    expect(sent.code, sent.stderr).toBe(0);

    const [run] = await stack.waitForRuns('large-index', 1, isDone, 300_000);
    expect(run?.statusName, JSON.stringify(run?.failure)).toBe('sent');
    const detail = await stack.run(run?.id ?? '');
    const storage = createStorage(testStorageConfig());
    const index = await storage.stat(stack.env.S3_BUCKET_INCOMING ?? '', `${detail.receiptId}.index.jsonl`);
    expect(index?.size).toBeGreaterThan(64 * MIB);
    expect(await readdir(destination.dir)).toHaveLength(INSTANCES);
  });
});

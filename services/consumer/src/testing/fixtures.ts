import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import {
  checkFlowDefinition,
  formatReceiptIndex,
  type Job,
  type JobInput,
  type ReceiptIndex,
} from '@dicomflow/messages';
import type { Storage } from '@dicomflow/storage';
import { asNodeStream } from '../staging/input-tar.js';

/** One synthetic instance of a test receipt (the consumer never parses the DICOM bytes). */
export interface FixtureInstance {
  readonly member: string;
  readonly studyUid: string;
  readonly seriesUid: string;
  readonly sopUid: string;
  readonly body: Buffer;
}

/** A receipt stored in S3: its tar, its index and what it holds. */
export interface StoredReceipt {
  readonly receiptId: string;
  readonly bucket: string;
  readonly tarKey: string;
  readonly indexKey: string;
  readonly instances: readonly FixtureInstance[];
}

/** Tar bytes of `(name, body)` files (small test content, built in memory). */
export async function tarOf(files: readonly { name: string; body: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const file of files) pack.entry({ name: file.name, size: file.body.length, mode: 0o644 }, file.body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of asNodeStream(pack) as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The regular files of a tar: name -> bytes. */
export async function filesOf(bytes: Buffer | Readable): Promise<Map<string, Buffer>> {
  const extract = tar.extract();
  const source = Buffer.isBuffer(bytes) ? Readable.from([bytes]) : bytes;
  source.pipe(extract);
  const files = new Map<string, Buffer>();
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
    if (entry.header.type === 'file') files.set(entry.header.name, Buffer.concat(chunks));
  }
  return files;
}

/**
 * Stores a receipt of `series` series with `perSeries` instances each (receiver layout
 * `<study>/<series>/<sop>.dcm`) in `bucket`, with its index.
 */
export async function storeReceipt(
  storage: Storage,
  bucket: string,
  series = 2,
  perSeries = 2,
): Promise<StoredReceipt> {
  const receiptId = randomUUID();
  const studyUid = `1.2.826.0.1.${Date.now()}`;
  const instances: FixtureInstance[] = [];
  for (let s = 1; s <= series; s++) {
    const seriesUid = `${studyUid}.${s}`;
    for (let i = 1; i <= perSeries; i++) {
      const sopUid = `${seriesUid}.${i}`;
      instances.push({
        member: `${studyUid}/${seriesUid}/${sopUid}.dcm`,
        studyUid,
        seriesUid,
        sopUid,
        body: Buffer.from(`instance ${sopUid} `.repeat(50 + i)),
      });
    }
  }
  const index: ReceiptIndex = {
    receiptId,
    instances: instances.map((instance) => ({
      member: instance.member,
      size: instance.body.length,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUid: instance.sopUid,
      studyInstanceUid: instance.studyUid,
      seriesInstanceUid: instance.seriesUid,
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      elements: {
        '00080060': { vr: 'CS', Value: ['CT'] },
        '0020000D': { vr: 'UI', Value: [instance.studyUid] },
        '0020000E': { vr: 'UI', Value: [instance.seriesUid] },
        '00080018': { vr: 'UI', Value: [instance.sopUid] },
      },
    })),
  };
  const tarKey = `${receiptId}.tar`;
  const indexKey = `${receiptId}.index.jsonl`;
  const bytes = await tarOf(instances.map((instance) => ({ name: instance.member, body: instance.body })));
  await storage.putBuffer(bucket, tarKey, bytes);
  await storage.putBuffer(bucket, indexKey, formatReceiptIndex(index), 'application/jsonl');
  return { receiptId, bucket, tarKey, indexKey, instances };
}

/** What a test job looks like. */
export interface JobFixtureOptions {
  readonly image: string;
  readonly input: JobInput;
  readonly runsBucket: string;
  readonly runId?: string;
  readonly step?: number;
  readonly stepCount?: number;
  /** Model fields besides docker_kwargs.image (checked and completed like a flow file). */
  readonly model?: Record<string, unknown>;
  readonly dockerKwargs?: Record<string, unknown>;
  readonly priority?: number;
}

/** A `job.cpu`/`job.gpu` body with its model checked by the flow rules (every default filled in). */
export function jobFixture(opts: JobFixtureOptions): Job {
  const checked = checkFlowDefinition({
    name: 'consumer-test',
    version: '1.0',
    triggers: [{ Modality: 'CT' }],
    models: [{ docker_kwargs: { image: opts.image, ...opts.dockerKwargs }, timeout: 60, ...opts.model }],
  });
  if (!checked.ok) throw new Error(`fixture model is invalid: ${JSON.stringify(checked.issues)}`);
  const model = checked.flow.models[0];
  if (!model) throw new Error('fixture flow has no model');
  const runId = opts.runId ?? randomUUID();
  const step = opts.step ?? 0;
  return {
    runId,
    receiptId: randomUUID(),
    step,
    stepCount: opts.stepCount ?? step + 1,
    flowName: 'consumer-test',
    flowVersion: '1.0',
    flowFile: 'consumer-test.yaml',
    flowHash: 'cd'.repeat(32),
    model,
    input: opts.input,
    output: { bucket: opts.runsBucket, key: `${runId}/${step}/output.tar` },
    priority: opts.priority ?? 0,
    dispatchedAt: new Date().toISOString(),
  };
}

/** The receipt input of a job taking `members` laid out by `tarSubdir`. */
export function receiptInput(
  receipt: StoredReceipt,
  members: readonly string[],
  tarSubdir: readonly string[],
): JobInput {
  return {
    kind: 'receipt',
    bucket: receipt.bucket,
    tarKey: receipt.tarKey,
    indexKey: receipt.indexKey,
    members: [...members],
    tarSubdir: [...tarSubdir],
  };
}

/** Hex SHA-256 of bytes. */
export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

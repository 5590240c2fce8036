import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  echoscu,
  freePort,
  generateCtSeries,
  makeTestCertificates,
  metricValue,
  newUid,
  readFileMeta,
  readMetrics,
  storescu,
  waitFor,
} from '@dicomflow/test-helpers';
import type { StudyReceived } from '@dicomflow/messages';
import { HeldAssociation } from './testing/held-association.js';
import { readReceipt, startReceiver, type Receiver } from './testing/receiver-harness.js';

/*
 * RECEIVER_WORKERS=2: associations are served by two worker processes (they run the built dist/, so
 * `npm run build` first), grouping and publishing stay in the service process.
 */

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-workers-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface WorkerDetail {
  readonly slot: number;
  readonly pid: number;
  readonly openAssociations: number;
}

async function workerDetails(receiver: Receiver): Promise<WorkerDetail[]> {
  const response = await fetch(`http://127.0.0.1:${receiver.service.ports().http}/readyz`);
  const body = (await response.json()) as { details: { receiverWorkers?: WorkerDetail[] } };
  return body.details.receiverWorkers ?? [];
}

/** Sends each part in an association of its own, all at once; every store must succeed. */
async function sendInParallel(receiver: Receiver, parts: readonly string[][]): Promise<void> {
  const results = await Promise.all(
    parts.map((files) => storescu({ port: receiver.port, calledAe: 'STORESCP', files })),
  );
  for (const result of results) expect(result.code, result.stderr).toBe(0);
}

/** `files` dealt round-robin into `n` parts, so every part holds instances of every series. */
function deal(files: readonly string[], n: number): string[][] {
  const parts: string[][] = Array.from({ length: n }, () => []);
  files.forEach((file, i) => parts[i % n]?.push(file));
  return parts;
}

async function sopUidsOf(receiver: Receiver, message: StudyReceived): Promise<string[]> {
  const { index } = await readReceipt(receiver.storage, message);
  return index.instances.map((instance) => instance.sopInstanceUid).sort();
}

async function sopUidsOfFiles(files: readonly string[]): Promise<string[]> {
  return (await Promise.all(files.map(async (file) => (await readFileMeta(file)).sopInstanceUid))).sort();
}

describe('storescp with RECEIVER_WORKERS=2', () => {
  it('study: parts of one study over parallel associations make one receipt holding every instance', async () => {
    const receiver = await startReceiver({ RECEIVER_WORKERS: '2', GROUPING: 'study', GROUP_TIMEOUT: '2' });
    try {
      const studyInstanceUid = newUid();
      const small = { studyInstanceUid, rows: 64, columns: 64 };
      const a = await generateCtSeries(join(work, 'study-a'), 6, { ...small, seriesInstanceUid: newUid() });
      const b = await generateCtSeries(join(work, 'study-b'), 6, { ...small, seriesInstanceUid: newUid() });
      await sendInParallel(receiver, deal([...a, ...b], 4));
      const [message] = await receiver.receipts.waitFor(1);
      if (!message) throw new Error('no receipt');
      expect(message).toMatchObject({ grouping: 'study', instanceCount: 12 });
      expect(await sopUidsOf(receiver, message)).toEqual(await sopUidsOfFiles([...a, ...b]));
      // One quiet period later still one: no instance made a group of its own in another worker.
      await expect(receiver.receipts.waitFor(2, 4000)).rejects.toThrow();
      const metrics = await readMetrics(receiver.service.ports().http);
      expect(metricValue(metrics, 'dicomflow_storescp_instances_stored_total')).toBe(12);
      expect(metricValue(metrics, 'dicomflow_storescp_associations_accepted_total')).toBe(4);
    } finally {
      await receiver.close();
    }
  });

  it('series: parts of two series over parallel associations make one receipt per series', async () => {
    const receiver = await startReceiver({ RECEIVER_WORKERS: '2', GROUPING: 'series', GROUP_TIMEOUT: '2' });
    try {
      const studyInstanceUid = newUid();
      const small = { studyInstanceUid, rows: 64, columns: 64 };
      const a = await generateCtSeries(join(work, 'series-a'), 5, { ...small, seriesInstanceUid: newUid() });
      const b = await generateCtSeries(join(work, 'series-b'), 7, { ...small, seriesInstanceUid: newUid() });
      await sendInParallel(receiver, deal([...a, ...b], 4));
      const messages = await receiver.receipts.waitFor(2);
      await expect(receiver.receipts.waitFor(3, 4000)).rejects.toThrow();
      const bySize = [...messages].sort((x, y) => x.instanceCount - y.instanceCount);
      expect(bySize.map((m) => m.instanceCount)).toEqual([5, 7]);
      const [five, seven] = bySize;
      if (!five || !seven) throw new Error('receipts missing');
      expect(await sopUidsOf(receiver, five)).toEqual(await sopUidsOfFiles(a));
      expect(await sopUidsOf(receiver, seven)).toEqual(await sopUidsOfFiles(b));
    } finally {
      await receiver.close();
    }
  });

  it('association: one receipt per association, and both workers served associations', async () => {
    const receiver = await startReceiver({ RECEIVER_WORKERS: '2' });
    try {
      const workers = await workerDetails(receiver);
      expect(workers.map((w) => w.slot).sort()).toEqual([1, 2]);
      expect(new Set(workers.map((w) => w.pid)).size).toBe(2);
      const parts = await Promise.all(
        [1, 2, 3, 4].map((n) => generateCtSeries(join(work, `assoc-${n}`), n + 1, { rows: 64, columns: 64 })),
      );
      await sendInParallel(receiver, parts);
      const messages = await receiver.receipts.waitFor(4);
      await expect(receiver.receipts.waitFor(5, 2000)).rejects.toThrow();
      expect(messages.map((m) => m.instanceCount).sort()).toEqual([2, 3, 4, 5]);
      expect(messages.every((m) => m.grouping === 'association')).toBe(true);
      const metrics = await readMetrics(receiver.service.ports().http);
      const served = (worker: string): number =>
        metricValue(metrics, 'dicomflow_storescp_worker_connections_total', { worker });
      expect(served('1')).toBeGreaterThanOrEqual(1);
      expect(served('2')).toBeGreaterThanOrEqual(1);
      expect(served('1') + served('2')).toBe(4);
      expect(metricValue(metrics, 'dicomflow_storescp_instances_stored_total')).toBe(14);
      expect(metricValue(metrics, 'dicomflow_storescp_associations_open')).toBe(0);
    } finally {
      await receiver.close();
    }
  });

  it('a worker killed mid-association: what it acknowledged is published, and a new worker takes connections', async () => {
    const receiver = await startReceiver({ RECEIVER_WORKERS: '2' });
    try {
      const files = await generateCtSeries(join(work, 'killed'), 4, { rows: 64, columns: 64 });
      const held = await HeldAssociation.open(receiver.port, files[0] ?? '');
      const acknowledged = files.slice(0, 3);
      for (const file of acknowledged) expect(await held.store(file)).toBe(0);
      const holder = (await workerDetails(receiver)).find((w) => w.openAssociations > 0);
      if (!holder) throw new Error('no worker holds the association');
      process.kill(holder.pid, 'SIGKILL');
      expect(await held.dropped()).toBe(true);
      await held.release();

      const [lost] = await receiver.receipts.waitFor(1);
      if (!lost) throw new Error('no receipt for the lost association');
      expect(await sopUidsOf(receiver, lost)).toEqual(await sopUidsOfFiles(acknowledged));

      await waitFor(async () => {
        const workers = await workerDetails(receiver);
        return workers.length === 2 && workers.every((w) => w.pid !== holder.pid);
      }, 'a replacement worker');
      const before = metricValue(
        await readMetrics(receiver.service.ports().http),
        'dicomflow_storescp_worker_connections_total',
        { worker: String(holder.slot) },
      );
      const parts = await Promise.all(
        [1, 2, 3, 4].map((n) => generateCtSeries(join(work, `after-${n}`), 2, { rows: 64, columns: 64 })),
      );
      await sendInParallel(receiver, parts);
      await receiver.receipts.waitFor(5);
      const metrics = await readMetrics(receiver.service.ports().http);
      expect(metricValue(metrics, 'dicomflow_storescp_worker_restarts_total')).toBe(1);
      expect(
        metricValue(metrics, 'dicomflow_storescp_worker_connections_total', { worker: String(holder.slot) }),
      ).toBeGreaterThan(before);
    } finally {
      await receiver.close();
    }
  });

  it('MAX_ASSOCIATIONS counts the associations of every worker', async () => {
    const receiver = await startReceiver({ RECEIVER_WORKERS: '2', MAX_ASSOCIATIONS: '1' });
    const files = await generateCtSeries(join(work, 'limit'), 1, { rows: 64, columns: 64 });
    const held = await HeldAssociation.open(receiver.port, files[0] ?? '');
    try {
      const open = async (): Promise<number> =>
        (await workerDetails(receiver)).reduce((sum, w) => sum + w.openAssociations, 0);
      await waitFor(async () => (await open()) === 1, 'the held association to be counted');
      // Connections go to the workers in turn: one of these reaches the worker that holds nothing.
      for (let i = 0; i < 2; i++) {
        const echo = await echoscu({ port: receiver.port, calledAe: 'STORESCP' });
        expect(echo.code).not.toBe(0);
      }
      await held.release();
      await waitFor(async () => (await open()) === 0, 'the held association to end');
      expect((await echoscu({ port: receiver.port, calledAe: 'STORESCP' })).code).toBe(0);
    } finally {
      await held.release();
      await receiver.close();
    }
  });

  it('DICOM TLS: both workers serve the TLS port as well as the plain one', async () => {
    const certs = await makeTestCertificates();
    const receiver = await startReceiver({
      RECEIVER_WORKERS: '2',
      AE_TLS_PORT: String(await freePort()),
      AE_TLS_CERT: certs.server.certFile,
      AE_TLS_KEY: certs.server.keyFile,
    });
    try {
      const tlsPort = receiver.service.ports().dicomTls;
      if (tlsPort === undefined) throw new Error('no DICOM TLS listener');
      const parts = await Promise.all(
        [1, 2, 3, 4].map((n) => generateCtSeries(join(work, `tls-${n}`), 2, { rows: 64, columns: 64 })),
      );
      const results = await Promise.all(
        parts.map((files) =>
          storescu({
            port: tlsPort,
            calledAe: 'STORESCP',
            files,
            extraArgs: ['+tla', '+cf', certs.ca.certFile],
          }),
        ),
      );
      for (const result of results) expect(result.code, result.stderr).toBe(0);
      // Only TLS connections so far: each worker took some.
      const metrics = await readMetrics(receiver.service.ports().http);
      for (const worker of ['1', '2'])
        expect(
          metricValue(metrics, 'dicomflow_storescp_worker_connections_total', { worker }),
        ).toBeGreaterThanOrEqual(1);
      expect(
        (await storescu({ port: receiver.port, calledAe: 'STORESCP', files: parts[0] ?? [] })).code,
      ).toBe(0);
      const messages = await receiver.receipts.waitFor(5);
      expect(messages.every((m) => m.instanceCount === 2)).toBe(true);
    } finally {
      await receiver.close();
      await certs.close();
    }
  });
});

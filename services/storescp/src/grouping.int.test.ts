import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCtSeries, newUid, runChecked, storescu } from '@dicomflow/test-helpers';
import { readReceipt, startReceiver } from './testing/receiver-harness.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-grouping-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('storescp grouping', () => {
  it('study: joins one study sent over two associations into one receipt after the quiet period', async () => {
    const receiver = await startReceiver({ GROUPING: 'study', GROUP_TIMEOUT: '1' });
    try {
      const studyInstanceUid = newUid();
      const first = await generateCtSeries(join(work, 'study-1'), 3, {
        studyInstanceUid,
        seriesInstanceUid: newUid(),
      });
      const second = await generateCtSeries(join(work, 'study-2'), 2, {
        studyInstanceUid,
        seriesInstanceUid: newUid(),
      });
      const other = await generateCtSeries(join(work, 'study-other'), 1, { studyInstanceUid: newUid() });
      expect((await storescu({ port: receiver.port, calledAe: 'STORESCP', files: first })).code).toBe(0);
      expect(
        (await storescu({ port: receiver.port, calledAe: 'STORESCP', files: [...second, ...other] })).code,
      ).toBe(0);
      const messages = await receiver.receipts.waitFor(2);
      await expect(receiver.receipts.waitFor(3, 2500)).rejects.toThrow();
      const joined = messages.find((m) => m.studies[0]?.studyInstanceUid === studyInstanceUid);
      expect(joined).toMatchObject({ grouping: 'study', instanceCount: 5 });
      expect(joined?.studies[0]?.series).toHaveLength(2);
      expect(messages.find((m) => m !== joined)?.instanceCount).toBe(1);
    } finally {
      await receiver.close();
    }
  });

  it('series: splits one association into one receipt per series', async () => {
    const receiver = await startReceiver({ GROUPING: 'series', GROUP_TIMEOUT: '1' });
    try {
      const studyInstanceUid = newUid();
      const a = await generateCtSeries(join(work, 'series-a'), 2, {
        studyInstanceUid,
        seriesInstanceUid: newUid(),
      });
      const b = await generateCtSeries(join(work, 'series-b'), 3, {
        studyInstanceUid,
        seriesInstanceUid: newUid(),
      });
      expect((await storescu({ port: receiver.port, calledAe: 'STORESCP', files: [...a, ...b] })).code).toBe(
        0,
      );
      const messages = await receiver.receipts.waitFor(2);
      expect(messages.map((m) => m.instanceCount).sort()).toEqual([2, 3]);
      expect(messages.every((m) => m.grouping === 'series' && m.studies[0]?.series.length === 1)).toBe(true);
    } finally {
      await receiver.close();
    }
  });

  it('series: completes on the last announced instance while GROUP_TIMEOUT is 60 s, across associations', async () => {
    const receiver = await startReceiver({ GROUPING: 'series', GROUP_TIMEOUT: '60' });
    try {
      const studyInstanceUid = newUid();
      const countedSeries = newUid();
      const counted = await generateCtSeries(join(work, 'counted'), 4, {
        studyInstanceUid,
        seriesInstanceUid: countedSeries,
        rows: 64,
        columns: 64,
      });
      const silent = await generateCtSeries(join(work, 'uncounted'), 2, {
        studyInstanceUid,
        seriesInstanceUid: newUid(),
        rows: 64,
        columns: 64,
      });
      // What scanners write: Images in Acquisition (0020,1002) on every instance of the series.
      await runChecked('dcmodify', ['-nb', '-i', '(0020,1002)=4', ...counted]);
      const send = (files: string[]): Promise<number | null> =>
        storescu({ port: receiver.port, calledAe: 'STORESCP', files }).then((result) => result.code);
      expect(await send([...counted.slice(0, 3), ...silent])).toBe(0);
      // A repeat of an instance already held does not count as the fourth.
      expect(await send([counted[0] ?? ''])).toBe(0);
      await expect(receiver.receipts.waitFor(1, 2000)).rejects.toThrow();
      expect(await send([counted[3] ?? ''])).toBe(0);
      // Bounded far below the 60 s quiet period: only the count can have completed it.
      const [message] = await receiver.receipts.waitFor(1, 20_000);
      expect(message).toMatchObject({ grouping: 'series', instanceCount: 4 });
      expect(message?.studies[0]?.series[0]?.seriesInstanceUid).toBe(countedSeries);
      const metrics = await (await fetch(`http://127.0.0.1:${receiver.service.ports().http}/metrics`)).text();
      expect(metrics).toMatch(
        /dicomflow_storescp_groups_completed_total\{reason="count",service="storescp"\} 1/,
      );
      // The series without a count is still open: it waits for its quiet period.
      expect(receiver.receipts.messages).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  it('lays out tar members by TAR_SUBDIR', async () => {
    const receiver = await startReceiver({ TAR_SUBDIR: 'StudyInstanceUID SeriesInstanceUID' });
    try {
      const studyInstanceUid = newUid();
      const seriesInstanceUid = newUid();
      const files = await generateCtSeries(join(work, 'subdir'), 2, { studyInstanceUid, seriesInstanceUid });
      expect((await storescu({ port: receiver.port, calledAe: 'STORESCP', files })).code).toBe(0);
      const [message] = await receiver.receipts.waitFor(1);
      if (!message) throw new Error('no receipt');
      expect(message.tarSubdir).toEqual(['StudyInstanceUID', 'SeriesInstanceUID']);
      const { members } = await readReceipt(receiver.storage, message);
      for (const name of members.keys())
        expect(name.startsWith(`${studyInstanceUid}/${seriesInstanceUid}/`)).toBe(true);
    } finally {
      await receiver.close();
    }
  });

  it('study: a group still open at shutdown is resumed from the spool by the next start', async () => {
    const spoolDir = await mkdtemp(join(work, 'resume-spool-'));
    const first = await startReceiver({ GROUPING: 'study', GROUP_TIMEOUT: '30', SPOOL_DIR: spoolDir });
    const studyInstanceUid = newUid();
    const files = await generateCtSeries(join(work, 'resume'), 3, { studyInstanceUid });
    try {
      expect((await storescu({ port: first.port, calledAe: 'STORESCP', files })).code).toBe(0);
    } finally {
      await first.close();
    }
    expect(first.receipts.messages).toHaveLength(0);
    const second = await startReceiver({
      GROUPING: 'study',
      GROUP_TIMEOUT: '1',
      SPOOL_DIR: spoolDir,
      S3_BUCKET_INCOMING: first.bucket,
    });
    try {
      const [message] = await second.receipts.waitFor(1);
      expect(message).toMatchObject({ grouping: 'study', instanceCount: 3, studies: [{ studyInstanceUid }] });
    } finally {
      await second.close();
      await rm(spoolDir, { recursive: true, force: true });
    }
  });

  it('association: an aborted association keeps and publishes what it received', async () => {
    const receiver = await startReceiver();
    try {
      const files = await generateCtSeries(join(work, 'abort'), 4, { studyInstanceUid: newUid() });
      const result = await storescu({
        port: receiver.port,
        calledAe: 'STORESCP',
        files,
        extraArgs: ['--abort'],
      });
      expect(result.code).toBe(0);
      const [message] = await receiver.receipts.waitFor(1);
      expect(message?.instanceCount).toBe(4);
    } finally {
      await receiver.close();
    }
  });
});

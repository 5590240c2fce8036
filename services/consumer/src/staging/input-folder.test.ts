import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatReceiptIndex, type Job, type ReceiptIndex } from '@dicomflow/messages';
import { tarOf } from '../testing/fixtures.js';
import { JobFailure } from '../jobs/job-failure.js';
import { stageInputFolder } from './input-folder.js';

const STUDY = '1.2.3';

/** A receipt of two series; the second holds one large instance (a tail a run of series 1 does not need). */
async function receipt(): Promise<{
  tar: Buffer;
  index: Buffer;
  series1: string[];
  bodies: Map<string, Buffer>;
}> {
  const instances = [
    { series: `${STUDY}.1`, sop: `${STUDY}.1.1`, body: Buffer.from('first '.repeat(100)) },
    { series: `${STUDY}.1`, sop: `${STUDY}.1.2`, body: Buffer.from('second '.repeat(100)) },
    { series: `${STUDY}.2`, sop: `${STUDY}.2.1`, body: Buffer.alloc(1024 * 1024, 7) },
  ].map((i) => ({ ...i, member: `${STUDY}/${i.series}/${i.sop}.dcm` }));
  const index: ReceiptIndex = {
    receiptId: '6f1c2a4e-8b1d-4c3a-9e2f-0a1b2c3d4e5f',
    instances: instances.map((i) => ({
      member: i.member,
      size: i.body.length,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUid: i.sop,
      studyInstanceUid: STUDY,
      seriesInstanceUid: i.series,
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      elements: {
        '0020000D': { vr: 'UI', Value: [STUDY] },
        '0020000E': { vr: 'UI', Value: [i.series] },
      },
    })),
  };
  return {
    tar: await tarOf(instances.map((i) => ({ name: i.member, body: i.body }))),
    index: Buffer.from(formatReceiptIndex(index)),
    series1: instances.filter((i) => i.series === `${STUDY}.1`).map((i) => i.member),
    bodies: new Map(instances.map((i) => [`${i.series}/${i.sop}.dcm`, i.body])),
  };
}

/** Bytes handed out in small pieces, lazily, noting how far the reader got. */
function pieces(bytes: Buffer, events: string[], name: string): Readable & { handedOut: () => number } {
  let at = 0;
  function* generate(): Generator<Buffer> {
    for (; at < bytes.length; at += 16 * 1024) yield bytes.subarray(at, at + 16 * 1024);
    events.push(`${name} read to its end`);
  }
  return Object.assign(Readable.from(generate(), { objectMode: false }), { handedOut: () => at });
}

function receiptJob(members: readonly string[]): Job {
  return {
    input: {
      kind: 'receipt',
      bucket: 'incoming',
      tarKey: 'r.tar',
      indexKey: 'r.index.jsonl',
      members: [...members],
      tarSubdir: ['SeriesInstanceUID'],
    },
  } as Job;
}

describe('stageInputFolder', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'consumer-input-folder-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("opens the receipt tar while the index is read, and stops reading it after the run's last member", async () => {
    const { tar, index, series1, bodies } = await receipt();
    const events: string[] = [];
    let tarStream: ReturnType<typeof pieces> | undefined;
    const storage = {
      getStream: (_bucket: string, key: string): Promise<Readable> => {
        events.push(`open ${key}`);
        if (key === 'r.tar') {
          tarStream = pieces(tar, events, key);
          return Promise.resolve(tarStream);
        }
        return Promise.resolve(pieces(index, events, key));
      },
    };
    const staged = await stageInputFolder({ storage }, receiptJob(series1), dir);
    // Both GETs went out before the index was read through (one after the other before).
    expect(events.slice(0, 3)).toEqual(['open r.index.jsonl', 'open r.tar', 'r.index.jsonl read to its end']);
    // Series 2's megabyte was not downloaded: the tar was released once series 1 was written.
    expect(events).not.toContain('r.tar read to its end');
    expect(tarStream?.handedOut()).toBeLessThan(tar.length / 2);
    expect(tarStream?.destroyed).toBe(true);
    expect(staged).toEqual({ files: 2, bytes: 1300 });
    const written = await readdir(join(dir, `${STUDY}.1`));
    expect(written.sort()).toEqual([`${STUDY}.1.1.dcm`, `${STUDY}.1.2.dcm`]);
    for (const name of written) {
      expect(await readFile(join(dir, `${STUDY}.1`, name))).toEqual(bodies.get(`${STUDY}.1/${name}`));
    }
  });

  it('reads the whole tar when the last member of the run is at its end', async () => {
    const { tar, index, bodies } = await receipt();
    const events: string[] = [];
    const storage = {
      getStream: (_bucket: string, key: string): Promise<Readable> =>
        Promise.resolve(pieces(key === 'r.tar' ? tar : index, events, key)),
    };
    const all = [...bodies.keys()].map((name) => `${STUDY}/${name}`);
    expect(await stageInputFolder({ storage }, receiptJob(all), dir)).toEqual({
      files: 3,
      bytes: 1300 + 1024 * 1024,
    });
    const large = await readFile(join(dir, `${STUDY}.2`, `${STUDY}.2.1.dcm`));
    // Buffer.equals: a deep comparison of a megabyte takes seconds.
    expect(large.equals(bodies.get(`${STUDY}.2/${STUDY}.2.1.dcm`) ?? Buffer.alloc(0))).toBe(true);
  });

  it('fails with reason input on an invalid index, and releases the tar opened meanwhile', async () => {
    const { tar } = await receipt();
    let tarStream: Readable | undefined;
    const storage = {
      getStream: (_bucket: string, key: string): Promise<Readable> => {
        if (key !== 'r.tar') return Promise.resolve(Readable.from([Buffer.from('not json\n')]));
        tarStream = Readable.from([tar]);
        return Promise.resolve(tarStream);
      },
    };
    const staging = stageInputFolder({ storage }, receiptJob([`${STUDY}/${STUDY}.1/${STUDY}.1.1.dcm`]), dir);
    await expect(staging).rejects.toBeInstanceOf(JobFailure);
    await expect(staging).rejects.toMatchObject({ reason: 'input' });
    expect(tarStream?.destroyed).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });
});

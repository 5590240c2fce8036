import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { truncatedCopy, withMissingTag } from './broken-files.js';
import { echoscu, storescu } from './dcmtk-scu.js';
import { generateCtSeries } from './fixtures.js';
import { nodelayShimPath } from './nodelay-shim.js';
import { datasetDigest, readFileMeta } from './part10-meta.js';
import { rawStoreScu } from './raw-store-scu.js';
import { runChecked } from './run-command.js';
import { freePort, startDcmtkStorescp, type RunningProcess } from './storescp-process.js';
import { convertTransferSyntax, TRANSFER_SYNTAX_UIDS, type TransferSyntaxName } from './transfer-syntax.js';

let work: string;
let series: string[];
let running: RunningProcess[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'helpers-net-'));
  series = await generateCtSeries(join(work, 'series'), 5, { rows: 128, columns: 128 });
});

afterEach(async () => {
  await Promise.all(running.map((p) => p.stop()));
  running = [];
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function receiver(name: string, env?: NodeJS.ProcessEnv): Promise<{ port: number; outDir: string }> {
  const port = await freePort();
  const outDir = join(work, name);
  running.push(await startDcmtkStorescp({ port, outDir, ...(env ? { env } : {}) }));
  return { port, outDir };
}

async function receivedFiles(outDir: string): Promise<string[]> {
  return (await readdir(outDir)).map((name) => join(outDir, name));
}

async function digests(files: string[]): Promise<string[]> {
  return (await Promise.all(files.map((f) => datasetDigest(f)))).sort();
}

describe('storescu -> dcmtk storescp', () => {
  it('delivers 5 instances whose datasets are byte-identical on both sides', async () => {
    const { port, outDir } = await receiver('roundtrip');
    const result = await storescu({ port, files: series, extraArgs: ['-v'] });
    expect(result.code).toBe(0);
    expect(result.stderr.match(/Received Store Response \(Success\)/g)).toHaveLength(5);
    const received = await receivedFiles(outDir);
    expect(await digests(received)).toEqual(await digests(series));
  });

  it('negotiates every transfer syntax as stored and keeps each dataset byte for byte', async () => {
    const names = Object.keys(TRANSFER_SYNTAX_UIDS) as TransferSyntaxName[];
    // One instance per syntax: storescp names stored files by SOP Instance UID.
    const sources = await generateCtSeries(join(work, 'ts-sources'), names.length, { rows: 64, columns: 64 });
    const files = await Promise.all(
      names.map(async (name, i) => {
        const file = join(work, `ts-${name}.dcm`);
        await convertTransferSyntax(sources[i] ?? '', file, name);
        return file;
      }),
    );
    const { port, outDir } = await receiver('all-ts');
    const result = await storescu({ port, files, extraArgs: ['-v'] });
    expect(result.code).toBe(0);
    const received = await receivedFiles(outDir);
    expect(received).toHaveLength(names.length);
    const syntaxes = await Promise.all(received.map(async (f) => (await readFileMeta(f)).transferSyntaxUid));
    expect(syntaxes.sort()).toEqual(Object.values(TRANSFER_SYNTAX_UIDS).sort());
    expect(await digests(received)).toEqual(await digests(files));
  });

  it('sends a file without SOPInstanceUID at the top level of its dataset', async () => {
    const file = join(work, 'no-sop-instance.dcm');
    await withMissingTag(series[1] ?? '', file, 'SOPInstanceUID');
    const { port, outDir } = await receiver('missing');
    const result = await storescu({ port, files: [file], extraArgs: ['-v'] });
    expect(result.stderr).toMatch(/Received Store Response \(Success\)/);
    const stored = (await receivedFiles(outDir))[0] ?? '';
    const { stdout } = await runChecked('dcmdump', ['-q', stored]);
    expect(stdout.split('\n').some((line) => line.startsWith('(0008,0018)'))).toBe(false);
  });

  it('works with the nodelay shim preloaded on both sides', async () => {
    const shim = await nodelayShimPath(join(work, 'shim'));
    const env = { ...process.env, LD_PRELOAD: shim };
    const { port, outDir } = await receiver('shim-received', env);
    const result = await storescu({ port, files: series, env });
    expect(result.code).toBe(0);
    expect(await digests(await receivedFiles(outDir))).toEqual(await digests(series));
  });

  it('answers C-ECHO', async () => {
    const { port } = await receiver('echo');
    expect((await echoscu({ port })).code).toBe(0);
  });
});

describe('rawStoreScu', () => {
  it('puts a cut-short dataset on the wire as it is on disk, then a whole one, in one association', async () => {
    const truncated = join(work, 'cut.dcm');
    await truncatedCopy(series[2] ?? '', truncated, 20_000);
    const { port, outDir } = await receiver('raw');
    const result = await rawStoreScu({ port, files: [truncated, series[3] ?? ''] });
    // dcmtk storescp with +B stores bytes as they come and does not check the framing.
    expect(result).toEqual({ associated: true, statuses: [0, 0] });
    expect(await digests(await receivedFiles(outDir))).toEqual(await digests([truncated, series[3] ?? '']));
  });
});

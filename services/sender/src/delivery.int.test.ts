import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  freePort,
  generateCtSeries,
  startDcmtkStorescp,
  startOrthanc,
  type RunningProcess,
  type RunningOrthanc,
} from '@dicomflow/test-helpers';
import { fileCount, receivedDigests, sentDigests } from './testing/received.js';
import { flowFinished, SenderWorld } from './testing/sender-harness.js';

let fixtures: string;
let series: string[];

beforeAll(async () => {
  fixtures = await mkdtemp(join(tmpdir(), 'sender-fixtures-'));
  series = await generateCtSeries(join(fixtures, 'ct'), 12, { rows: 64, columns: 64 });
}, 60_000);

afterAll(async () => {
  await rm(fixtures, { recursive: true, force: true });
});

describe('sender delivery', () => {
  let world: SenderWorld;
  let scratch: string;
  const stops: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    world = await SenderWorld.create();
    scratch = await mkdtemp(join(tmpdir(), 'sender-peers-'));
  });

  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop().catch(() => undefined);
    await world.cleanup();
    await rm(scratch, { recursive: true, force: true });
  });

  async function storescp(
    name: string,
    port?: number,
  ): Promise<{ port: number; dir: string; peer: RunningProcess }> {
    const chosen = port ?? (await freePort());
    const dir = join(scratch, name);
    const peer = await startDcmtkStorescp({ port: chosen, outDir: dir, aeTitle: 'DEST', extraArgs: ['+uf'] });
    stops.push(() => peer.stop());
    return { port: chosen, dir, peer };
  }

  async function orthanc(opts: Parameters<typeof startOrthanc>[0] = {}): Promise<RunningOrthanc> {
    const peer = await startOrthanc(opts);
    stops.push(() => peer.stop());
    return peer;
  }

  const members = (files: readonly string[]) =>
    files.map((path) => ({ name: `out/series/${basename(path)}`, path }));

  it('delivers every instance byte for byte to dcmtk storescp and Orthanc', async () => {
    const dcmtk = await storescp('dcmtk');
    const pacs = await orthanc();
    await world.startSender();
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(runId, members(series));
    await world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [
          { host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' },
          { host: '127.0.0.1', port: pacs.dicomPort, ae_title: pacs.aeTitle },
        ],
      }),
    );
    const outcome = await world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(outcome.body.instanceCount).toBe(series.length);
    expect(outcome.body.outcomes.map((o) => [o.target.port, o.sent, o.failed, o.attempts])).toEqual([
      [dcmtk.port, series.length, 0, 1],
      [pacs.dicomPort, series.length, 0, 1],
    ]);
    const started = world.eventsOf(runId).filter((e) => e.routingKey === 'send.started');
    expect(started).toHaveLength(1);
    expect(started[0]?.messageId).toBe(`${runId}:send.started`);
    expect(outcome.messageId).toBe(`${runId}:send.finished`);

    const expected = await sentDigests(series);
    expect(await receivedDigests(dcmtk.dir)).toEqual(expected);
    expect(await fileCount(dcmtk.dir)).toBe(series.length);
    const stored = await pacs.instances();
    expect(stored.map((i) => i.sopInstanceUid).sort()).toEqual([...expected.keys()].sort());
  });
});

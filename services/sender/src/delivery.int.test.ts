import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  convertTransferSyntax,
  freePort,
  generateCtSeries,
  startDcmtkStorescp,
  startOrthanc,
  waitFor,
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
    expect(await orthancDigests(pacs, scratch)).toEqual(expected);
  });

  it('sends instances larger than a read block (several blocks, reused buffers) intact', async () => {
    const big = await generateCtSeries(join(scratch, 'big'), 3, { rows: 1100, columns: 1100 });
    const mixed = [big[0], series[0], big[1], big[2], series[1]].filter((f): f is string => f !== undefined);
    const dcmtk = await storescp('dcmtk');
    await world.startSender();
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(
      runId,
      mixed.map((path, i) => ({ name: `out/${i}.dcm`, path })),
    );
    await world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [{ host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' }],
      }),
    );
    const outcome = await world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(await receivedDigests(dcmtk.dir)).toEqual(await sentDigests(mixed));
  });

  it('delivers once to a destination that is down at first and up 20 s later', async () => {
    const port = await freePort();
    await world.startSender({
      SEND_MAX_ATTEMPTS: '30',
      SEND_RETRY_INITIAL_MS: '500',
      SEND_RETRY_MAX_MS: '3000',
    });
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(runId, members(series));
    await world.publishFlowFinished(
      flowFinished({ runId, output, destinations: [{ host: '127.0.0.1', port, ae_title: 'DEST' }] }),
    );
    await sleep(20_000);
    expect(world.outcomeOf(runId)).toBeUndefined();
    const late = await storescp('late', port);
    const outcome = await world.waitForOutcome(runId, 120_000);
    expect(outcome.routingKey).toBe('send.finished');
    const [target] = outcome.body.outcomes;
    expect(target?.sent).toBe(series.length);
    expect(target?.attempts).toBeGreaterThan(1);
    expect(await fileCount(late.dir)).toBe(series.length);
    expect(await receivedDigests(late.dir)).toEqual(await sentDigests(series));
  }, 180_000);

  it('fails at once, without retries, when Orthanc does not know our AE title', async () => {
    const pacs = await orthanc({ allowAnyCaller: false, modalities: { other: { aeTitle: 'SOMEONE' } } });
    await world.startSender({ SEND_MAX_ATTEMPTS: '10' });
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(runId, members(series));
    await world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [{ host: '127.0.0.1', port: pacs.dicomPort, ae_title: pacs.aeTitle }],
      }),
    );
    const outcome = await world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    const [target] = outcome.body.outcomes;
    expect(target).toMatchObject({ sent: 0, failed: series.length, attempts: 1, reason: 'rejected' });
    expect(target?.message).toMatch(/calling AE title not recognised/);
    expect(await pacs.instances()).toEqual([]);
  });

  it('gives up on an unreachable port after its attempts', async () => {
    const port = await freePort();
    await world.startSender({
      SEND_MAX_ATTEMPTS: '3',
      SEND_RETRY_INITIAL_MS: '100',
      SEND_RETRY_MAX_MS: '200',
    });
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(runId, members(series));
    await world.publishFlowFinished(
      flowFinished({ runId, output, destinations: [{ host: '127.0.0.1', port, ae_title: 'NOBODY' }] }),
    );
    const outcome = await world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    expect(outcome.body.outcomes[0]).toMatchObject({
      sent: 0,
      failed: series.length,
      attempts: 3,
      reason: 'unreachable',
    });
    expect(outcome.body.outcomes[0]?.message).toMatch(/ECONNREFUSED/);
  });

  it('gives up on a node that accepts the connection but never answers (timeout)', async () => {
    const silent = createServer((socket) => {
      socket.on('data', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    stops.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const address = silent.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await world.startSender({
      SEND_MAX_ATTEMPTS: '2',
      SEND_RETRY_INITIAL_MS: '100',
      SEND_RETRY_MAX_MS: '200',
      SEND_TIMEOUT_MS: '500',
    });
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(runId, members(series));
    await world.publishFlowFinished(
      flowFinished({ runId, output, destinations: [{ host: '127.0.0.1', port, ae_title: 'SILENT' }] }),
    );
    const outcome = await world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    expect(outcome.body.outcomes[0]).toMatchObject({ sent: 0, attempts: 2, reason: 'unreachable' });
    expect(outcome.body.outcomes[0]?.message).toMatch(/no association answer/);
  });

  it('reports counts per destination when one of two fails; the good one gets everything', async () => {
    const good = await storescp('good');
    const badPort = await freePort();
    await world.startSender({
      SEND_MAX_ATTEMPTS: '2',
      SEND_RETRY_INITIAL_MS: '100',
      SEND_RETRY_MAX_MS: '200',
    });
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(runId, members(series));
    await world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [
          { host: '127.0.0.1', port: good.port, ae_title: 'DEST' },
          { host: '127.0.0.1', port: badPort, ae_title: 'DOWN' },
        ],
      }),
    );
    const outcome = await world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    expect(outcome.body.outcomes.map((o) => [o.target.aeTitle, o.sent, o.failed, o.reason ?? null])).toEqual([
      ['DEST', series.length, 0, null],
      ['DOWN', 0, series.length, 'unreachable'],
    ]);
    expect(await receivedDigests(good.dir)).toEqual(await sentDigests(series));
  });

  it('reports per instance a compressed transfer syntax the destination does not accept', async () => {
    const [first, second, third] = series;
    if (!first || !second || !third) throw new Error('fixture too small');
    const jpegLs = join(scratch, 'jpeg-ls.dcm');
    const rle = join(scratch, 'rle.dcm');
    await convertTransferSyntax(second, jpegLs, 'jpeg-ls-lossless');
    await convertTransferSyntax(third, rle, 'rle');
    // Implicit VR little endian only: the explicit VR file goes out converted, the compressed ones cannot.
    const pacs = await orthanc({ acceptedTransferSyntaxes: ['1.2.840.10008.1.2'] });
    await world.startSender();
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(runId, [
      { name: 'a/plain.dcm', path: first },
      { name: 'a/jpeg-ls.dcm', path: jpegLs },
      { name: 'a/rle.dcm', path: rle },
    ]);
    await world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [{ host: '127.0.0.1', port: pacs.dicomPort, ae_title: pacs.aeTitle }],
      }),
    );
    const outcome = await world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    const [target] = outcome.body.outcomes;
    expect(target).toMatchObject({ sent: 1, failed: 2, attempts: 1, reason: 'instances-refused' });
    expect(target?.failures.map((f) => f.member).sort()).toEqual(['a/jpeg-ls.dcm', 'a/rle.dcm']);
    for (const failure of target?.failures ?? []) expect(failure.message).toMatch(/transfer syntax/);
    const stored = await pacs.instances();
    expect(stored.map((i) => i.sopInstanceUid)).toEqual([...(await sentDigests([first])).keys()]);
  });

  it('does not resend what a destination acknowledged when flow.finished is delivered again', async () => {
    const up = await storescp('up');
    const downPort = await freePort();
    await world.startSender({
      SEND_MAX_ATTEMPTS: '2',
      SEND_RETRY_INITIAL_MS: '100',
      SEND_RETRY_MAX_MS: '200',
    });
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(runId, members(series));
    const finished = flowFinished({
      runId,
      output,
      destinations: [
        { host: '127.0.0.1', port: up.port, ae_title: 'DEST' },
        { host: '127.0.0.1', port: downPort, ae_title: 'LATER' },
      ],
    });
    await world.publishFlowFinished(finished);
    expect((await world.waitForOutcome(runId)).routingKey).toBe('send.failed');
    expect(await fileCount(up.dir)).toBe(series.length);

    // The same message again, now that the second destination is up: only it receives anything.
    const later = await storescp('later', downPort);
    await world.publishFlowFinished(finished);
    await waitFor(
      () => world.eventsOf(runId).some((e) => e.routingKey === 'send.finished'),
      'send.finished after the redelivery',
      60_000,
    );
    const done = world.eventsOf(runId).find((e) => e.routingKey === 'send.finished');
    expect(done?.body.outcomes.map((o) => [o.target.aeTitle, o.sent, o.failed, o.attempts])).toEqual([
      ['DEST', series.length, 0, 0],
      ['LATER', series.length, 0, 1],
    ]);
    expect(await fileCount(up.dir)).toBe(series.length);
    expect(await fileCount(later.dir)).toBe(series.length);

    // Once more, everything acknowledged: nothing is sent at all.
    await world.publishFlowFinished(finished);
    await waitFor(
      () => world.eventsOf(runId).filter((e) => e.routingKey === 'send.finished').length === 2,
      'the second send.finished',
      60_000,
    );
    expect(await fileCount(up.dir)).toBe(series.length);
    expect(await fileCount(later.dir)).toBe(series.length);
  });

  it('skips and reports files that are not DICOM', async () => {
    const dcmtk = await storescp('dcmtk');
    await world.startSender();
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(runId, [
      ...members(series),
      { name: 'out/report.txt', data: Buffer.from('model log, not DICOM\n') },
    ]);
    await world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [{ host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' }],
      }),
    );
    const outcome = await world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(outcome.body).toMatchObject({ instanceCount: series.length, skipped: 1 });
    expect(outcome.body.skippedMembers).toEqual([
      { member: 'out/report.txt', reason: expect.stringMatching(/not a DICOM/) as unknown },
    ]);
    const started = world.eventsOf(runId).find((e) => e.routingKey === 'send.started');
    expect(started?.body).toMatchObject({ instanceCount: series.length, skipped: 1 });
    expect(await receivedDigests(dcmtk.dir)).toEqual(await sentDigests(series));
  });

  it('returns the output to the calling host on a port, called with the calling AE title', async () => {
    // Orthanc checks the called AE title: only SCANNER (the study's calling AE title) is accepted.
    const scanner = await orthanc({ aeTitle: 'SCANNER' });
    await world.startSender();
    const runId = crypto.randomUUID();
    const output = await world.putOutputTar(runId, members(series));
    await world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        returnToSender: { host: '127.0.0.1', aeTitle: 'SCANNER', ports: [scanner.dicomPort] },
      }),
    );
    const outcome = await world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(outcome.body.outcomes.map((o) => o.target)).toEqual([
      { kind: 'return-to-sender', host: '127.0.0.1', port: scanner.dicomPort, aeTitle: 'SCANNER' },
    ]);
    expect(await orthancDigests(scanner, scratch)).toEqual(await sentDigests(series));
  });
});

/** SOP Instance UID -> dataset digest of every instance Orthanc stored. */
async function orthancDigests(pacs: RunningOrthanc, scratch: string): Promise<Map<string, string>> {
  const dir = await mkdtemp(join(scratch, 'orthanc-files-'));
  const paths: string[] = [];
  for (const instance of await pacs.instances()) {
    const path = join(dir, `${instance.id}.dcm`);
    await writeFile(path, await pacs.instanceFile(instance.id));
    paths.push(path);
  }
  return sentDigests(paths);
}

import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sendTargetText } from '@dicomflow/messages';
import { convertTransferSyntax, freePort } from '@dicomflow/test-helpers';
import { members, useSenderTest } from './testing/peers.js';
import { receivedDigests, sentDigests } from './testing/received.js';
import { flowFinished } from './testing/sender-harness.js';

describe('sender failures', () => {
  const t = useSenderTest();

  it('fails at once, without retries, when Orthanc does not know our AE title', async () => {
    const pacs = await t.orthanc({ allowAnyCaller: false, modalities: { other: { aeTitle: 'SOMEONE' } } });
    await t.world.startSender({ SEND_MAX_ATTEMPTS: '10' });
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port: pacs.dicomPort, ae_title: pacs.aeTitle }],
    });
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    const [target] = outcome.body.outcomes;
    expect(target).toMatchObject({ sent: 0, failed: t.series.length, attempts: 1, reason: 'rejected' });
    expect(target?.message).toMatch(/calling AE title not recognised/);
    expect(await pacs.instances()).toEqual([]);
  });

  it('gives up on an unreachable port after its attempts', async () => {
    const port = await freePort();
    await t.world.startSender({
      SEND_MAX_ATTEMPTS: '3',
      SEND_RETRY_INITIAL_MS: '100',
      SEND_RETRY_MAX_MS: '200',
    });
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port, ae_title: 'NOBODY' }],
    });
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    expect(outcome.body.outcomes[0]).toMatchObject({
      sent: 0,
      failed: t.series.length,
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
    t.defer(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const address = silent.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await t.world.startSender({
      SEND_MAX_ATTEMPTS: '2',
      SEND_RETRY_INITIAL_MS: '100',
      SEND_RETRY_MAX_MS: '200',
      SEND_TIMEOUT_MS: '500',
    });
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port, ae_title: 'SILENT' }],
    });
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    expect(outcome.body.outcomes[0]).toMatchObject({ sent: 0, attempts: 2, reason: 'unreachable' });
    expect(outcome.body.outcomes[0]?.message).toMatch(/no association answer/);
  });

  it('reports counts per destination when one of two fails; the good one gets everything', async () => {
    const good = await t.storescp('good');
    const badPort = await freePort();
    await t.world.startSender({
      SEND_MAX_ATTEMPTS: '2',
      SEND_RETRY_INITIAL_MS: '100',
      SEND_RETRY_MAX_MS: '200',
    });
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [
        { host: '127.0.0.1', port: good.port, ae_title: 'DEST' },
        { host: '127.0.0.1', port: badPort, ae_title: 'DOWN' },
      ],
    });
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    expect(
      outcome.body.outcomes.map((o) => [sendTargetText(o.target), o.sent, o.failed, o.reason ?? null]),
    ).toEqual([
      [`DEST@127.0.0.1:${good.port}`, t.series.length, 0, null],
      [`DOWN@127.0.0.1:${badPort}`, 0, t.series.length, 'unreachable'],
    ]);
    expect(await receivedDigests(good.dir)).toEqual(await sentDigests(t.series));
  });

  it('reports per instance a compressed transfer syntax the destination does not accept', async () => {
    const [first, second, third] = t.series;
    if (!first || !second || !third) throw new Error('fixture too small');
    const jpegLs = join(t.scratch, 'jpeg-ls.dcm');
    const rle = join(t.scratch, 'rle.dcm');
    await convertTransferSyntax(second, jpegLs, 'jpeg-ls-lossless');
    await convertTransferSyntax(third, rle, 'rle');
    // Implicit VR little endian only: the explicit VR file goes out converted, the compressed ones cannot.
    const pacs = await t.orthanc({ acceptedTransferSyntaxes: ['1.2.840.10008.1.2'] });
    await t.world.startSender();
    const runId = crypto.randomUUID();
    const output = await t.world.putOutputTar(runId, [
      { name: 'a/plain.dcm', path: first },
      { name: 'a/jpeg-ls.dcm', path: jpegLs },
      { name: 'a/rle.dcm', path: rle },
    ]);
    await t.world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [{ host: '127.0.0.1', port: pacs.dicomPort, ae_title: pacs.aeTitle }],
      }),
    );
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    const [target] = outcome.body.outcomes;
    expect(target).toMatchObject({ sent: 1, failed: 2, attempts: 1, reason: 'instances-refused' });
    expect(target?.failures.map((f) => f.member).sort()).toEqual(['a/jpeg-ls.dcm', 'a/rle.dcm']);
    for (const failure of target?.failures ?? []) expect(failure.message).toMatch(/transfer syntax/);
    const stored = await pacs.instances();
    expect(stored.map((i) => i.sopInstanceUid)).toEqual([...(await sentDigests([first])).keys()]);
  });

  it('reports send.failed when the output tar is gone', async () => {
    await t.world.startSender();
    const runId = crypto.randomUUID();
    await t.world.publishFlowFinished(
      flowFinished({
        runId,
        output: { bucket: t.world.isolation.bucket, key: `${runId}/1/output.tar` },
        destinations: [{ host: '127.0.0.1', port: 104, ae_title: 'DEST' }],
      }),
    );
    const outcome = await t.world.waitForOutcome(runId);
    if (outcome.routingKey !== 'send.failed')
      throw new Error(`expected send.failed, got ${outcome.routingKey}`);
    expect(outcome.body.outcomes[0]).toMatchObject({ sent: 0, attempts: 0, reason: 'error' });
    expect(outcome.body.message).toMatch(/output tar is gone/);
  });

  it('reports send.failed when the output is not a tar (read twice, then failed)', async () => {
    await t.world.startSender();
    const runId = crypto.randomUUID();
    const key = `${runId}/1/output.tar`;
    await t.world.storage.putBuffer(t.world.isolation.bucket, key, Buffer.alloc(4096, 'not a tar archive '));
    await t.world.publishFlowFinished(
      flowFinished({
        runId,
        output: { bucket: t.world.isolation.bucket, key },
        destinations: [{ host: '127.0.0.1', port: 104, ae_title: 'DEST' }],
      }),
    );
    const outcome = await t.world.waitForOutcome(runId);
    if (outcome.routingKey !== 'send.failed')
      throw new Error(`expected send.failed, got ${outcome.routingKey}`);
    expect(outcome.body.message).toMatch(/unreadable tar/);
    expect(t.world.eventsOf(runId).map((e) => e.routingKey)).toEqual(['send.failed']);
  });
});

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testStorageConfig, waitFor, withSopClass } from '@dicomflow/test-helpers';
import { members, useSenderTest } from './testing/peers.js';
import { fileCount, receivedDigests, sentDigests } from './testing/received.js';
import { flowFinished } from './testing/sender-harness.js';
import { TcpRelay } from './testing/tcp-relay.js';

const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';

describe('sender sending while the output downloads', () => {
  const t = useSenderTest();

  /** A relay in front of S3 that the sender downloads through (stopped after the test). */
  async function s3Relay(): Promise<TcpRelay> {
    const relay = await TcpRelay.start(testStorageConfig().port);
    t.defer(() => relay.close());
    return relay;
  }

  /** Waits until the folder holds a file, or gives up (the timeout only bounds a test that fails). */
  async function firstArrival(dir: string): Promise<boolean> {
    return waitFor(
      async () => (await fileCount(dir)) > 0,
      'a first instance at the destination',
      30_000,
    ).then(
      () => true,
      () => false,
    );
  }

  it('stores the first instance at the destination before the last bytes of the tar are served', async () => {
    const dcmtk = await t.storescp('dcmtk');
    const relay = await s3Relay();
    await t.world.startSender({ S3_ENDPOINT: '127.0.0.1', S3_PORT: String(relay.port) });
    const runId = crypto.randomUUID();
    const output = await t.world.putOutputTar(runId, members(t.series));
    const tarBytes = (await t.world.storage.stat(output.bucket, output.key))?.size ?? 0;
    const events: string[] = [];
    // The relay lets half the tar through, then holds the rest until the test releases it.
    const held = relay.holdAfter(Math.floor(tarBytes / 2)).then(() => events.push('tar held half-way'));
    await t.world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [{ host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' }],
      }),
    );
    await held;
    if (await firstArrival(dcmtk.dir))
      events.push(`instance stored with ${relay.served} of ${tarBytes} bytes served`);
    events.push('rest of the tar released');
    relay.release();

    const outcome = await t.world.waitForOutcome(runId);
    expect(events).toEqual([
      'tar held half-way',
      `instance stored with ${Math.floor(tarBytes / 2)} of ${tarBytes} bytes served`,
      'rest of the tar released',
    ]);
    expect(outcome.routingKey).toBe('send.finished');
    expect(outcome.body.outcomes.map((o) => [o.sent, o.failed, o.attempts])).toEqual([
      [t.series.length, 0, 1],
    ]);
    expect(await receivedDigests(dcmtk.dir)).toEqual(await sentDigests(t.series));
    expect(await fileCount(dcmtk.dir)).toBe(t.series.length);
    // send.started carries the counts of the whole output, so it comes once the download is complete.
    expect(t.world.eventsOf(runId).map((e) => e.routingKey)).toEqual(['send.started', 'send.finished']);
    expect(t.world.eventsOf(runId)[0]?.body.instanceCount).toBe(t.series.length);
  });

  it('a download cut mid-way retries the run; what was acknowledged is not sent again', async () => {
    const dcmtk = await t.storescp('dcmtk');
    const relay = await s3Relay();
    await t.world.startSender({ S3_ENDPOINT: '127.0.0.1', S3_PORT: String(relay.port) });
    const runId = crypto.randomUUID();
    const output = await t.world.putOutputTar(runId, members(t.series));
    const tarBytes = (await t.world.storage.stat(output.bucket, output.key))?.size ?? 0;
    const held = relay.holdAfter(Math.floor(tarBytes / 2));
    await t.world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [{ host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' }],
      }),
    );
    await held;
    expect(await firstArrival(dcmtk.dir)).toBe(true);
    const connectionsBefore = relay.connections;
    relay.cut();

    const outcome = await t.world.waitForOutcome(runId);
    expect(relay.connections).toBeGreaterThan(connectionsBefore);
    expect(outcome.routingKey).toBe('send.finished');
    expect(outcome.body.instanceCount).toBe(t.series.length);
    expect(outcome.body.outcomes.map((o) => [o.sent, o.failed])).toEqual([[t.series.length, 0]]);
    // One file per C-STORE at storescp: every instance arrived exactly once, byte for byte.
    expect(await fileCount(dcmtk.dir)).toBe(t.series.length);
    expect(await receivedDigests(dcmtk.dir)).toEqual(await sentDigests(t.series));
    expect(t.world.eventsOf(runId).map((e) => e.routingKey)).toEqual(['send.started', 'send.finished']);
  });

  it('opens a new association when a later file needs a presentation context not proposed', async () => {
    const dcmtk = await t.storescp('dcmtk');
    const dicomRelay = await TcpRelay.start(dcmtk.port);
    t.defer(() => dicomRelay.close());
    const s3 = await s3Relay();
    await t.world.startSender({ S3_ENDPOINT: '127.0.0.1', S3_PORT: String(s3.port) });
    // Eleven CT images, then one secondary capture: the first association only knew CT.
    const ct = t.series.slice(0, 11);
    const last = t.series[11] ?? '';
    const capture = join(t.scratch, 'capture.dcm');
    await withSopClass(last, capture, SECONDARY_CAPTURE);
    const files = [...ct, capture];
    const runId = crypto.randomUUID();
    const output = await t.world.putOutputTar(runId, members(files));
    const tarBytes = (await t.world.storage.stat(output.bucket, output.key))?.size ?? 0;
    const held = s3.holdAfter(Math.floor(tarBytes / 2));
    await t.world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [{ host: '127.0.0.1', port: dicomRelay.port, ae_title: 'DEST' }],
      }),
    );
    await held;
    expect(await firstArrival(dcmtk.dir)).toBe(true);
    s3.release();

    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    // A new association for a new context is not a retry.
    expect(outcome.body.outcomes.map((o) => [o.sent, o.failed, o.attempts])).toEqual([[files.length, 0, 1]]);
    expect(dicomRelay.connections).toBe(2);
    expect(await receivedDigests(dcmtk.dir)).toEqual(await sentDigests(files));
    expect(await fileCount(dcmtk.dir)).toBe(files.length);
  });
});

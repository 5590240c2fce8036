import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sendTargetText } from '@dicomflow/messages';
import { freePort, generateCtSeries, waitFor } from '@dicomflow/test-helpers';
import { members, orthancDigests, useSenderTest } from './testing/peers.js';
import { fileCount, receivedDigests, sentDigests } from './testing/received.js';
import { flowFinished } from './testing/sender-harness.js';
import { flowFinishedReady, startLoggedSender } from './testing/sender-logs.js';

describe('sender delivery', () => {
  const t = useSenderTest();

  it('delivers every instance byte for byte to dcmtk storescp and Orthanc', async () => {
    const dcmtk = await t.storescp('dcmtk');
    const pacs = await t.orthanc();
    await t.world.startSender();
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [
        { host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' },
        { host: '127.0.0.1', port: pacs.dicomPort, ae_title: pacs.aeTitle },
      ],
    });
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(outcome.body.instanceCount).toBe(t.series.length);
    expect(
      outcome.body.outcomes.map((o) => [sendTargetText(o.target), o.sent, o.failed, o.attempts]),
    ).toEqual([
      [`DEST@127.0.0.1:${dcmtk.port}`, t.series.length, 0, 1],
      [`${pacs.aeTitle}@127.0.0.1:${pacs.dicomPort}`, t.series.length, 0, 1],
    ]);
    const started = t.world.eventsOf(runId).filter((e) => e.routingKey === 'send.started');
    expect(started).toHaveLength(1);
    expect(started[0]?.messageId).toBe(`${runId}:send.started`);
    expect(outcome.messageId).toBe(`${runId}:send.finished`);

    const expected = await sentDigests(t.series);
    expect(await receivedDigests(dcmtk.dir)).toEqual(expected);
    expect(await fileCount(dcmtk.dir)).toBe(t.series.length);
    const stored = await pacs.instances();
    expect(stored.map((i) => i.sopInstanceUid).sort()).toEqual([...expected.keys()].sort());
    expect(await orthancDigests(pacs, t.scratch)).toEqual(expected);
  });

  it('sends instances larger than a read block (several blocks, reused buffers) intact', async () => {
    const big = await generateCtSeries(join(t.scratch, 'big'), 3, { rows: 1100, columns: 1100 });
    const mixed = [big[0], t.series[0], big[1], big[2], t.series[1]].filter(
      (f): f is string => f !== undefined,
    );
    const dcmtk = await t.storescp('dcmtk');
    await t.world.startSender();
    const runId = crypto.randomUUID();
    const output = await t.world.putOutputTar(
      runId,
      mixed.map((path, i) => ({ name: `out/${i}.dcm`, path })),
    );
    await t.world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [{ host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' }],
      }),
    );
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(await receivedDigests(dcmtk.dir)).toEqual(await sentDigests(mixed));
  });

  it('delivers once to a destination that is down at first and up after rounds at the longest backoff', async () => {
    const port = await freePort();
    const sender = await startLoggedSender(t, {
      SEND_MAX_ATTEMPTS: '30',
      SEND_RETRY_INITIAL_MS: '500',
      SEND_RETRY_MAX_MS: '3000',
    });
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port, ae_title: 'DEST' }],
    });
    // Backoff 500, 1000, 2000, then 3000 (the cap): the 5th failed round came after a wait at the cap.
    await waitFor(
      () => sender.retries(runId).length >= 5,
      'five failed rounds against the down node',
      120_000,
    );
    expect(t.world.outcomeOf(runId)).toBeUndefined();
    expect(sender.settled(runId)).toEqual([]);
    const late = await t.storescp('late', port);
    const outcome = await t.world.waitForOutcome(runId, 120_000);
    expect(outcome.routingKey).toBe('send.finished');
    const [target] = outcome.body.outcomes;
    expect(target?.sent).toBe(t.series.length);
    expect(target?.attempts).toBeGreaterThan(5);
    // Every round but the last failed and was retried.
    expect(target?.attempts).toBe(sender.retries(runId).length + 1);
    expect(await fileCount(late.dir)).toBe(t.series.length);
    expect(await receivedDigests(late.dir)).toEqual(await sentDigests(t.series));
  }, 180_000);

  it('sends again what a node answered with 0xA7xx (out of resources) once it recovers', async () => {
    const dcmtk = await t.storescp('full');
    // dcmtk storescp answers 0xA700 when it cannot write the file: take its folder away for a while.
    await rm(dcmtk.dir, { recursive: true, force: true });
    const sender = await startLoggedSender(t, {
      SEND_MAX_ATTEMPTS: '40',
      SEND_RETRY_INITIAL_MS: '200',
      SEND_RETRY_MAX_MS: '500',
    });
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' }],
    });
    const outOfResources = () =>
      sender.retries(runId).filter((line) => /C-STORE status 0xA7/.test(String(line.err)));
    await waitFor(() => outOfResources().length > 0, 'a round answered with 0xA7xx and retried', 60_000);
    await mkdir(dcmtk.dir);
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(outcome.body.outcomes[0]?.sent).toBe(t.series.length);
    expect(outcome.body.outcomes[0]?.attempts).toBeGreaterThan(1);
    expect(outcome.body.outcomes[0]?.attempts).toBe(sender.retries(runId).length + 1);
    expect(await fileCount(dcmtk.dir)).toBe(t.series.length);
    expect(await receivedDigests(dcmtk.dir)).toEqual(await sentDigests(t.series));
  });

  it('does not resend what a destination acknowledged when flow.finished is delivered again', async () => {
    const up = await t.storescp('up');
    const downPort = await freePort();
    await t.world.startSender({
      SEND_MAX_ATTEMPTS: '2',
      SEND_RETRY_INITIAL_MS: '100',
      SEND_RETRY_MAX_MS: '200',
    });
    const runId = crypto.randomUUID();
    const output = await t.world.putOutputTar(runId, members(t.series));
    const finished = flowFinished({
      runId,
      output,
      destinations: [
        { host: '127.0.0.1', port: up.port, ae_title: 'DEST' },
        { host: '127.0.0.1', port: downPort, ae_title: 'LATER' },
      ],
    });
    await t.world.publishFlowFinished(finished);
    expect((await t.world.waitForOutcome(runId)).routingKey).toBe('send.failed');
    expect(await fileCount(up.dir)).toBe(t.series.length);

    // The same message again, now that the second destination is up: only it receives anything.
    const later = await t.storescp('later', downPort);
    await t.world.publishFlowFinished(finished);
    await waitFor(
      () => t.world.eventsOf(runId).some((e) => e.routingKey === 'send.finished'),
      'send.finished after the redelivery',
      60_000,
    );
    const done = t.world.eventsOf(runId).find((e) => e.routingKey === 'send.finished');
    expect(done?.body.outcomes.map((o) => [sendTargetText(o.target), o.sent, o.failed, o.attempts])).toEqual([
      [`DEST@127.0.0.1:${up.port}`, t.series.length, 0, 0],
      [`LATER@127.0.0.1:${downPort}`, t.series.length, 0, 1],
    ]);
    expect(await fileCount(up.dir)).toBe(t.series.length);
    expect(await fileCount(later.dir)).toBe(t.series.length);

    // Once more, everything acknowledged: nothing is sent at all.
    await t.world.publishFlowFinished(finished);
    await waitFor(
      () => t.world.eventsOf(runId).filter((e) => e.routingKey === 'send.finished').length === 2,
      'the second send.finished',
      60_000,
    );
    expect(await fileCount(up.dir)).toBe(t.series.length);
    expect(await fileCount(later.dir)).toBe(t.series.length);
  });

  it('sends once when the same flow.finished is delivered twice at the same time', async () => {
    const port = await freePort();
    const sender = await startLoggedSender(t, {
      SEND_MAX_ATTEMPTS: '40',
      SEND_RETRY_INITIAL_MS: '200',
      SEND_RETRY_MAX_MS: '500',
    });
    const ready = await flowFinishedReady(t);
    const runId = crypto.randomUUID();
    const output = await t.world.putOutputTar(runId, members(t.series));
    const finished = flowFinished({
      runId,
      output,
      destinations: [{ host: '127.0.0.1', port, ae_title: 'DEST' }],
    });
    // Both copies are taken at once (prefetch 2) while the destination is still down.
    await t.world.publishFlowFinished(finished);
    await t.world.publishFlowFinished(finished);
    await waitFor(
      async () => sender.retries(runId).length > 0 && (await ready()) === 0,
      'both copies taken and a round against the down node retried',
      60_000,
    );
    // Neither copy is settled: both are held by the sender (one sending, one waiting for the run lock).
    expect(sender.settled(runId)).toEqual([]);
    expect(t.world.outcomeOf(runId)).toBeUndefined();
    const late = await t.storescp('late', port);
    await waitFor(
      () => t.world.eventsOf(runId).filter((e) => e.routingKey === 'send.finished').length === 2,
      'both deliveries finished',
      60_000,
    );
    expect(await fileCount(late.dir)).toBe(t.series.length);
    const outcomes = t.world.eventsOf(runId).filter((e) => e.routingKey === 'send.finished');
    expect(outcomes.map((e) => e.messageId)).toEqual([`${runId}:send.finished`, `${runId}:send.finished`]);
    // One copy sent everything after retrying; the other found it all acknowledged and sent nothing.
    const attempts = outcomes.map((e) => e.body.outcomes[0]?.attempts ?? -1).sort((a, b) => a - b);
    expect(attempts[0]).toBe(0);
    expect(attempts[1]).toBeGreaterThan(1);
  });

  it('stops promptly while waiting to retry, and a new sender delivers the run once', async () => {
    const port = await freePort();
    // A first backoff of 1-2 s: the sender is still waiting when it is stopped right after the retry.
    const retrying = { SEND_MAX_ATTEMPTS: '40', SEND_RETRY_INITIAL_MS: '2000', SEND_RETRY_MAX_MS: '4000' };
    const first = await startLoggedSender(t, retrying);
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [{ host: '127.0.0.1', port, ae_title: 'DEST' }],
    });
    await waitFor(() => first.retries(runId).length > 0, 'a failed round waiting to be retried', 60_000);
    await first.close();
    // It stopped in that wait: no further round was tried, and no outcome was published.
    expect(first.retries(runId)).toHaveLength(1);
    expect(t.world.outcomeOf(runId)).toBeUndefined();
    const late = await t.storescp('late', port);
    await t.world.startSender(retrying);
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(await fileCount(late.dir)).toBe(t.series.length);
  });

  it('skips and reports files that are not DICOM', async () => {
    const dcmtk = await t.storescp('dcmtk');
    await t.world.startSender();
    const runId = crypto.randomUUID();
    const output = await t.world.putOutputTar(runId, [
      ...members(t.series),
      { name: 'out/report.txt', data: Buffer.from('model log, not DICOM\n') },
    ]);
    await t.world.publishFlowFinished(
      flowFinished({
        runId,
        output,
        destinations: [{ host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' }],
      }),
    );
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(outcome.body).toMatchObject({ instanceCount: t.series.length, skipped: 1 });
    expect(outcome.body.skippedMembers).toEqual([
      { member: 'out/report.txt', reason: expect.stringMatching(/not a DICOM/) as unknown },
    ]);
    const started = t.world.eventsOf(runId).find((e) => e.routingKey === 'send.started');
    expect(started?.body).toMatchObject({ instanceCount: t.series.length, skipped: 1 });
    expect(await receivedDigests(dcmtk.dir)).toEqual(await sentDigests(t.series));
  });

  it('returns the output to the calling host on a port, called with the calling AE title', async () => {
    // Orthanc checks the called AE title: only SCANNER (the study's calling AE title) is accepted.
    const scanner = await t.orthanc({ aeTitle: 'SCANNER' });
    await t.world.startSender();
    const { runId } = await t.world.publishRun(members(t.series), {
      returnToSender: { host: '127.0.0.1', aeTitle: 'SCANNER', ports: [scanner.dicomPort] },
    });
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(outcome.body.outcomes.map((o) => o.target)).toEqual([
      { kind: 'return-to-sender', host: '127.0.0.1', port: scanner.dicomPort, aeTitle: 'SCANNER' },
    ]);
    expect(await orthancDigests(scanner, t.scratch)).toEqual(await sentDigests(t.series));
  });
});

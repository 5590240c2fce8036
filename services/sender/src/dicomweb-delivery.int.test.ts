import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, makeTestCertificates, readFileMeta, waitFor } from '@dicomflow/test-helpers';
import { members, orthancDigests, useSenderTest } from './testing/peers.js';
import { fileCount, receivedDigests, sentDigests } from './testing/received.js';
import { flowFinished, withDatabase } from './testing/sender-harness.js';
import { startTlsTerminator } from './testing/tls-terminator.js';
import { startLoggedSender } from './testing/sender-logs.js';

/** The DICOMweb base URL of an Orthanc with its DICOMweb plugin. */
const dicomWebUrl = (httpPort: number, root = 'dicom-web'): string => `http://127.0.0.1:${httpPort}/${root}`;

describe('sender delivery to DICOMweb servers (STOW-RS)', () => {
  const t = useSenderTest();

  it('delivers every instance byte for byte to Orthanc, in batches, next to a DICOM node', async () => {
    const pacs = await t.orthanc({ dicomWeb: {} });
    const dcmtk = await t.storescp('dcmtk');
    // 12 instances in requests of at most 5: several requests, and the last one partial.
    const sender = await startLoggedSender(t, { SEND_STOW_BATCH_INSTANCES: '5' });
    const url = dicomWebUrl(pacs.httpPort);
    const runId = crypto.randomUUID();
    const finished = flowFinished({
      runId,
      output: await t.world.putOutputTar(runId, members(t.series)),
      destinations: [{ url }, { host: '127.0.0.1', port: dcmtk.port, ae_title: 'DEST' }],
    });
    await t.world.publishFlowFinished(finished);

    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.finished');
    expect(outcome.messageId).toBe(`${runId}:send.finished`);
    expect(outcome.body.outcomes).toEqual([
      { target: { kind: 'destination', url }, sent: 12, failed: 0, attempts: 1, failures: [] },
      {
        target: { kind: 'destination', host: '127.0.0.1', port: dcmtk.port, aeTitle: 'DEST' },
        sent: 12,
        failed: 0,
        attempts: 1,
        failures: [],
      },
    ]);
    const started = t.world.eventsOf(runId).find((e) => e.routingKey === 'send.started');
    expect(started?.body).toMatchObject({ instanceCount: 12, targets: [{ kind: 'destination', url }, {}] });

    // Orthanc holds every instance, each Part-10 file identical to the one sent.
    const expected = await sentDigests(t.series);
    const stored = await pacs.instances();
    expect(stored.map((i) => i.sopInstanceUid).sort()).toEqual([...expected.keys()].sort());
    expect(await orthancDigests(pacs, t.scratch)).toEqual(expected);
    const byUid = new Map<string, Buffer>();
    for (const path of t.series) byUid.set((await readFileMeta(path)).sopInstanceUid, await readFile(path));
    for (const instance of stored)
      expect(
        (await pacs.instanceFile(instance.id)).equals(byUid.get(instance.sopInstanceUid) ?? Buffer.alloc(0)),
      ).toBe(true);
    expect(await receivedDigests(dcmtk.dir)).toEqual(expected);

    // Every instance is recorded as acknowledged under the server's URL, and the delivery is done.
    const { schema } = t.world.isolation;
    const acks = await withDatabase((db) =>
      db.query<{ target: string; n: string; statuses: number[] }>(
        `SELECT target, count(*) AS n, array_agg(DISTINCT status) AS statuses FROM "${schema}".acks
         WHERE run_id = $1 GROUP BY target ORDER BY target`,
        [runId],
      ),
    );
    expect(acks.rows).toEqual([
      { target: `destination|127.0.0.1|${dcmtk.port}|DEST`, n: '12', statuses: [0] },
      { target: `destination|${url}`, n: '12', statuses: [0] },
    ]);
    const deliveries = await withDatabase((db) =>
      db.query<{ state: string }>(`SELECT state FROM "${schema}".deliveries WHERE run_id = $1`, [runId]),
    );
    expect(deliveries.rows).toEqual([{ state: 'done' }]);
    expect(sender.logs.filter((l) => l.msg === 'retrying target')).toEqual([]);
    // Requests of at most 5 instances, as many as the download had brought each time.
    const requests = sender.logs.filter((l) => l.msg === 'STOW-RS request answered' && l.runId === runId);
    expect(requests.length).toBeGreaterThanOrEqual(3);
    expect(requests.every((l) => l.status === 200 && Number(l.instances) <= 5)).toBe(true);
    expect(requests.reduce((sum, l) => sum + Number(l.instances), 0)).toBe(12);

    // The same flow.finished again: nothing goes out again (no request: 0 attempts), the outcome is the same.
    await t.world.publishFlowFinished(finished);
    await waitFor(
      () => t.world.eventsOf(runId).filter((e) => e.routingKey === 'send.finished').length === 2,
      'the second send.finished',
      60_000,
    );
    const again = t.world.eventsOf(runId).filter((e) => e.routingKey === 'send.finished')[1];
    expect(again?.messageId).toBe(`${runId}:send.finished`);
    expect(
      again?.routingKey === 'send.finished' && again.body.outcomes.map((o) => [o.sent, o.attempts]),
    ).toEqual([
      [12, 0],
      [12, 0],
    ]);
    expect((await pacs.instances()).length).toBe(12);
    expect(await fileCount(dcmtk.dir)).toBe(12);
  });

  it('retries a DICOMweb server that is not up yet, then delivers once it starts', async () => {
    const port = await freePort();
    const sender = await startLoggedSender(t, {
      SEND_MAX_ATTEMPTS: '30',
      SEND_RETRY_INITIAL_MS: '200',
      SEND_RETRY_MAX_MS: '1000',
    });
    const url = dicomWebUrl(port);
    const { runId } = await t.world.publishRun(members(t.series), { destinations: [{ url }] });
    await waitFor(
      () => sender.retries(runId).length >= 2,
      'two failed rounds against the down server',
      60_000,
    );
    expect(sender.retries(runId)[0]).toMatchObject({
      target: `destination|${url}`,
      code: 'ECONNREFUSED',
      err: expect.stringContaining(`STOW-RS to ${url}/studies`) as unknown,
    });
    expect(t.world.outcomeOf(runId)).toBeUndefined();

    const pacs = await t.orthanc({ dicomWeb: {}, httpPort: port });
    const outcome = await t.world.waitForOutcome(runId, 120_000);
    expect(outcome.routingKey).toBe('send.finished');
    const [target] = outcome.body.outcomes;
    expect(target).toMatchObject({ target: { kind: 'destination', url }, sent: 12, failed: 0 });
    // Every round but the last failed and was retried.
    expect(target?.attempts).toBe(sender.retries(runId).length + 1);
    expect(await orthancDigests(pacs, t.scratch)).toEqual(await sentDigests(t.series));
  }, 180_000);

  it('fails at once, without retries, on a path the server does not serve (404)', async () => {
    const pacs = await t.orthanc({ dicomWeb: {} });
    const sender = await startLoggedSender(t, { SEND_MAX_ATTEMPTS: '10' });
    const url = dicomWebUrl(pacs.httpPort, 'no-such-dicom-web');
    const { runId } = await t.world.publishRun(members(t.series), { destinations: [{ url }] });
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    const [target] = outcome.body.outcomes;
    expect(target).toMatchObject({ sent: 0, failed: 12, attempts: 1, reason: 'rejected' });
    expect(target?.message).toMatch(
      /^STOW-RS to .*\/no-such-dicom-web\/studies: the server refused the request: HTTP 404/,
    );
    expect(outcome.routingKey === 'send.failed' && outcome.body.message).toContain(
      `${url}: 12 not delivered (rejected`,
    );
    expect(sender.retries(runId)).toEqual([]);
    expect(await pacs.instances()).toEqual([]);
  });

  it('delivers over https to a server whose CA is in SEND_TLS_CA_FILE, and refuses one it cannot verify', async () => {
    const certs = await makeTestCertificates();
    t.defer(() => certs.close());
    const pacs = await t.orthanc({ dicomWeb: {} });
    const https = await startTlsTerminator(pacs.httpPort, {
      key: await readFile(certs.server.keyFile, 'utf8'),
      cert: await readFile(certs.server.certFile, 'utf8'),
    });
    t.defer(() => https.close());
    const url = `https://127.0.0.1:${https.port}/dicom-web`;
    const trusting = await startLoggedSender(t, { SEND_TLS_CA_FILE: certs.ca.certFile });
    const trusted = await t.world.publishRun(members(t.series), { destinations: [{ url }] });
    const outcome = await t.world.waitForOutcome(trusted.runId);
    expect(outcome.routingKey, JSON.stringify(outcome.body)).toBe('send.finished');
    expect(outcome.body.outcomes[0]).toMatchObject({ sent: 12, failed: 0, attempts: 1 });
    expect(trusting.retries(trusted.runId)).toEqual([]);
    expect(await orthancDigests(pacs, t.scratch)).toEqual(await sentDigests(t.series));
    await trusting.close();

    // Without the CA: the certificate cannot be verified, which no retry fixes.
    await t.world.startSender({ SEND_MAX_ATTEMPTS: '10' });
    const untrusted = await t.world.publishRun(members(t.series), { destinations: [{ url }] });
    const refused = await t.world.waitForOutcome(untrusted.runId);
    expect(refused.routingKey).toBe('send.failed');
    expect(refused.body.outcomes[0]).toMatchObject({ sent: 0, failed: 12, attempts: 1, reason: 'rejected' });
    expect(refused.body.outcomes[0]?.message).toMatch(/unable to verify the first certificate/);
  });

  it('fails at once when the server refuses the token (401), the token read from token_file', async () => {
    const pacs = await t.orthanc({
      dicomWeb: {},
      extraConfig: { AuthenticationEnabled: true, RegisteredUsers: { alice: 'wonderland' } },
    });
    await writeFile(join(t.scratch, 'pacs-token'), 'not-a-token-orthanc-knows\n');
    const sender = await startLoggedSender(t, { SENDER_TOKEN_DIR: t.scratch, SEND_MAX_ATTEMPTS: '10' });
    const url = dicomWebUrl(pacs.httpPort);
    const { runId } = await t.world.publishRun(members(t.series), {
      destinations: [{ url, token_file: 'pacs-token' }],
    });
    const outcome = await t.world.waitForOutcome(runId);
    expect(outcome.routingKey).toBe('send.failed');
    expect(outcome.body.outcomes[0]).toMatchObject({ sent: 0, failed: 12, attempts: 1, reason: 'rejected' });
    expect(outcome.body.outcomes[0]?.message).toMatch(/HTTP 401 .*check token or token_file/);
    expect(sender.retries(runId)).toEqual([]);
    // The token never shows in the sender's log nor in its messages.
    expect(JSON.stringify(sender.logs)).not.toContain('not-a-token-orthanc-knows');
    expect(JSON.stringify(t.world.eventsOf(runId))).not.toContain('not-a-token-orthanc-knows');
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoscu, generateCtSeries, newUid, storescu } from '@dicomflow/test-helpers';
import { connectionLimit } from './dimse/dicom-server.js';
import {
  associateRq,
  CT_IMAGE,
  echoCommand,
  IMPLICIT_LE,
  pData,
  pdv,
  presentationContext,
  COMMAND_LAST,
} from './dimse/testing/raw-pdus.js';
import { RawPeer } from './dimse/testing/raw-peer.js';
import { startReceiver, type Receiver } from './testing/receiver-harness.js';

/*
 * Peers that break the upper layer protocol or its limits: each must get an A-ASSOCIATE-RJ or A-ABORT
 * and the connection closed, the process must live on, and the next sender must be served. No timing
 * is asserted: a super-linear step would end these tests on their timeout.
 */

/** A-ASSOCIATE-RJ (type, then body): permanent, service provider (presentation), local limit exceeded. */
const REJECT_LIMIT = [0x03, 0, 1, 3, 2];

let work: string;
let receiver: Receiver;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'storescp-hostile-assoc-'));
  receiver = await startReceiver();
});

afterAll(async () => {
  await receiver.close();
  await rm(work, { recursive: true, force: true });
});

/** Sends `bytes` on a fresh connection; returns the first PDU answered (type, then body) once it closed. */
async function answerTo(bytes: Buffer): Promise<number[]> {
  const peer = await RawPeer.connect(receiver.port);
  await peer.send(bytes);
  const answer = await peer.next();
  await peer.closedByReceiver();
  return [answer.type, ...answer.body];
}

async function expectStillServing(): Promise<void> {
  const echo = await echoscu({ port: receiver.port, calledAe: 'STORESCP' });
  expect(echo.code).toBe(0);
}

describe('storescp and hostile association requests', () => {
  it('aborts two presentation contexts with one ID (255) instead of crashing, and keeps serving', async () => {
    const rq = associateRq([
      presentationContext(255, CT_IMAGE, [IMPLICIT_LE]),
      presentationContext(255, CT_IMAGE, [IMPLICIT_LE]),
    ]);
    // A-ABORT: service provider, invalid PDU parameter value.
    expect(await answerTo(rq)).toEqual([0x07, 0, 0, 2, 6]);
    await expectStillServing();
  });

  it('rejects 129 presentation contexts (the library renumbered one past 255 and crashed)', async () => {
    const contexts = Array.from({ length: 129 }, (_, i) =>
      presentationContext((2 * i + 1) % 256, CT_IMAGE, [IMPLICIT_LE]),
    );
    expect(await answerTo(associateRq(contexts))).toEqual(REJECT_LIMIT);
    await expectStillServing();
  });

  it('rejects an 80k-context request (960 KB; 15 s of library parsing) from its header', async () => {
    const contexts = Array.from({ length: 80_000 }, () => presentationContext(1, '', []));
    expect(await answerTo(associateRq(contexts))).toEqual(REJECT_LIMIT);
    await expectStillServing();
  });

  it('rejects a context proposing 33 transfer syntaxes', async () => {
    const syntaxes = Array.from({ length: 33 }, (_, i) => `1.2.3.${i}`);
    expect(await answerTo(associateRq([presentationContext(1, CT_IMAGE, syntaxes)]))).toEqual(REJECT_LIMIT);
    await expectStillServing();
  });

  it('aborts a P-DATA-TF naming a presentation context that was not negotiated, and still stores afterwards', async () => {
    const peer = await RawPeer.connect(receiver.port);
    await peer.send(associateRq([presentationContext(1, CT_IMAGE, [IMPLICIT_LE])]));
    expect((await peer.next()).type).toBe(0x02);
    await peer.send(pData([pdv(3, COMMAND_LAST, echoCommand(1))]));
    expect((await peer.next()).type).toBe(0x07);
    await peer.closedByReceiver();

    const before = receiver.receipts.messages.length;
    const files = await generateCtSeries(join(work, 'after-unknown-context'), 2, {
      studyInstanceUid: newUid(),
    });
    const sent = await storescu({ port: receiver.port, calledAe: 'STORESCP', files });
    expect(sent.code).toBe(0);
    const [message] = (await receiver.receipts.waitFor(before + 1)).slice(before);
    expect(message?.instanceCount).toBe(2);
  });

  it('aborts a P-DATA-TF announcing 4 GiB inside an association', async () => {
    const peer = await RawPeer.connect(receiver.port);
    await peer.send(associateRq([presentationContext(1, CT_IMAGE, [IMPLICIT_LE])]));
    expect((await peer.next()).type).toBe(0x02);
    await peer.send(Buffer.from([0x04, 0, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0]));
    expect((await peer.next()).type).toBe(0x07);
    await peer.closedByReceiver();
    await expectStillServing();
  });

  it('aborts an unknown PDU type (unrecognized PDU) and a P-DATA-TF before any association', async () => {
    expect(await answerTo(Buffer.from([0x09, 0, 0, 0, 0, 2, 0, 0]))).toEqual([0x07, 0, 0, 2, 1]);
    expect(await answerTo(pData([pdv(1, COMMAND_LAST, echoCommand(1))]))).toEqual([0x07, 0, 0, 2, 2]);
    await expectStillServing();
  });

  it('aborts a second A-ASSOCIATE-RQ inside an association', async () => {
    const peer = await RawPeer.connect(receiver.port);
    const rq = associateRq([presentationContext(1, CT_IMAGE, [IMPLICIT_LE])]);
    await peer.send(rq);
    expect((await peer.next()).type).toBe(0x02);
    await peer.send(rq);
    expect((await peer.next()).type).toBe(0x07);
    await peer.closedByReceiver();
  });
});

describe('storescp bounds on connections', () => {
  it('accepts MAX_ASSOCIATIONS plus a margin of connections, rejects associations past MAX_ASSOCIATIONS, drops the rest', async () => {
    const limited = await startReceiver({ MAX_ASSOCIATIONS: '1' });
    const peers: RawPeer[] = [];
    try {
      const limit = connectionLimit(1);
      for (let i = 0; i < limit; i++) peers.push(await RawPeer.connect(limited.port));
      // One more: Node closes it at once, without a byte.
      const dropped = await RawPeer.connect(limited.port);
      await dropped.closedByReceiver();
      await expect(dropped.next()).rejects.toThrow(/closed/);
      // Those within the margin still hear why: A-ASSOCIATE-RJ transient, local limit exceeded.
      const [first] = peers;
      if (!first) throw new Error('no peer');
      await first.send(associateRq([presentationContext(1, CT_IMAGE, [IMPLICIT_LE])]));
      const answer = await first.next();
      expect([answer.type, ...answer.body]).toEqual([0x03, 0, 2, 3, 2]);
      for (const peer of peers) peer.destroy();
      await Promise.all(peers.map((p) => p.closed));
      // Counted connections are gone once closed: the next sender is served.
      const echo = await echoscu({ port: limited.port, calledAe: 'STORESCP' });
      expect(echo.code).toBe(0);
    } finally {
      for (const peer of peers) peer.destroy();
      await limited.close();
    }
  });

  it('closes a connection that connects and then sends nothing (connect timeout), and keeps serving', async () => {
    const slow = await startReceiver({ ASSOCIATION_IDLE_TIMEOUT: '2' });
    const silent = await RawPeer.connect(slow.port);
    try {
      await silent.closedByReceiver();
      const echo = await echoscu({ port: slow.port, calledAe: 'STORESCP' });
      expect(echo.code).toBe(0);
    } finally {
      silent.destroy();
      await slow.close();
    }
  });

  it('aborts an accepted association that goes silent between messages (idle timeout), and keeps serving', async () => {
    const slow = await startReceiver({ ASSOCIATION_IDLE_TIMEOUT: '2' });
    const peer = await RawPeer.connect(slow.port);
    try {
      await peer.send(associateRq([presentationContext(1, CT_IMAGE, [IMPLICIT_LE])]));
      expect((await peer.next()).type).toBe(0x02);
      // Nothing more from the peer: no P-DATA, no release.
      const answer = await peer.next();
      expect([answer.type, ...answer.body]).toEqual([0x07, 0, 0, 2, 0]);
      await peer.closedByReceiver();
      const echo = await echoscu({ port: slow.port, calledAe: 'STORESCP' });
      expect(echo.code).toBe(0);
    } finally {
      peer.destroy();
      await slow.close();
    }
  });

  it('closes a connection that dribbles its A-ASSOCIATE-RQ slower than the request timeout allows', async () => {
    // Idle timeout 2 s, so the request timeout is 2 s; a byte every 100 ms never trips the idle timeout.
    const slow = await startReceiver({ ASSOCIATION_IDLE_TIMEOUT: '2' });
    const peer = await RawPeer.connect(slow.port);
    try {
      const rq = associateRq([presentationContext(1, CT_IMAGE, [IMPLICIT_LE])]);
      let sent = 0;
      const dribble = setInterval(() => {
        if (sent < rq.length) void peer.send(rq.subarray(sent, ++sent));
      }, 100);
      await peer.closedByReceiver();
      clearInterval(dribble);
      expect(sent).toBeLessThan(rq.length);
      const echo = await echoscu({ port: slow.port, calledAe: 'STORESCP' });
      expect(echo.code).toBe(0);
    } finally {
      peer.destroy();
      await slow.close();
    }
  });

  it('aborts an association whose P-DATA-TF claims more bytes than come, once the idle timeout passes', async () => {
    const slow = await startReceiver({ ASSOCIATION_IDLE_TIMEOUT: '2' });
    const peer = await RawPeer.connect(slow.port);
    try {
      await peer.send(associateRq([presentationContext(1, CT_IMAGE, [IMPLICIT_LE])]));
      expect((await peer.next()).type).toBe(0x02);
      // Claims 64 KiB; 100 bytes come, then nothing. The peer used to see only the connection closed.
      const header = Buffer.from([0x04, 0, 0, 1, 0, 0]);
      await peer.send(Buffer.concat([header, Buffer.alloc(100)]));
      // A-ABORT: service provider, reason not specified.
      const answer = await peer.next();
      expect([answer.type, ...answer.body]).toEqual([0x07, 0, 0, 2, 0]);
      await peer.closedByReceiver();
      const echo = await echoscu({ port: slow.port, calledAe: 'STORESCP' });
      expect(echo.code).toBe(0);
    } finally {
      peer.destroy();
      await slow.close();
    }
  });
});

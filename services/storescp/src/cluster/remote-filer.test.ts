import type { InstanceInfo } from '@dicomflow/dicom';
import { createLogger } from '@dicomflow/runtime';
import { describe, expect, it } from 'vitest';
import { StoreStatus } from '../dimse/dimse.js';
import { fileInGroup } from '../dimse/instance-filing.js';
import { TooManyOpenGroupsError, type InstanceOrigin } from '../spool/grouper.js';
import { IndexLineTooLargeError } from '../spool/spool.js';
import { decodeError, decodeOrigin, encodeError, encodeOrigin, type FromWorker } from './protocol.js';
import { PrimaryGoneError, RemoteFiler } from './remote-filer.js';
import { workerExecArgv } from './worker-entry.js';

const log = createLogger({ service: 'test', level: 'silent' });
const origin: InstanceOrigin = {
  associationId: 'a1',
  callingAeTitle: 'SCU',
  calledAeTitle: 'STORESCP',
  callingHost: '127.0.0.1',
};
const info = {
  sopClassUid: '1.2',
  sopInstanceUid: '1.2.3',
  studyInstanceUid: '1.2.4',
  seriesInstanceUid: '1.2.5',
  transferSyntaxUid: '1.2.840.10008.1.2.1',
  modality: 'CT',
  size: 10,
  elements: {},
} satisfies InstanceInfo;

/** A filer whose sent messages are kept, as a worker's channel would carry them. */
function filer(failSend = false): { filer: RemoteFiler; sent: FromWorker[] } {
  const sent: FromWorker[] = [];
  return {
    sent,
    filer: new RemoteFiler((message, done) => {
      sent.push(message);
      done(failSend ? new Error('channel closed') : null);
    }),
  };
}

function idOf(message: FromWorker | undefined): number {
  if (!message || !('id' in message)) throw new Error('no request');
  return message.id;
}

describe('receiver worker protocol', () => {
  it('carries the typed admission errors across, so the same DICOM statuses are answered', async () => {
    const tooMany = decodeError(encodeError(new TooManyOpenGroupsError(7)));
    expect(tooMany).toBeInstanceOf(TooManyOpenGroupsError);
    expect(tooMany).toMatchObject({ limit: 7 });
    const tooLarge = decodeError(encodeError(new IndexLineTooLargeError(99)));
    expect(tooLarge).toBeInstanceOf(IndexLineTooLargeError);
    expect(decodeError(encodeError(new Error('disk full'))).message).toBe('disk full');

    const { filer: remote, sent } = filer();
    const filing = fileInGroup(remote, origin, info, '/spool/incoming/x.part', log);
    remote.answered(idOf(sent[0]), encodeError(new TooManyOpenGroupsError(7)));
    expect(await filing).toEqual({ status: StoreStatus.OutOfResources, reason: 'too many open groups' });
  });

  it('acknowledges an instance only once the primary answered', async () => {
    const { filer: remote, sent } = filer();
    let done = false;
    const admitted = remote.admit(origin, info, '/spool/incoming/x.part').then(() => (done = true));
    expect(sent[0]).toMatchObject({
      kind: 'admit',
      path: '/spool/incoming/x.part',
      origin: { associationId: 'a1' },
    });
    await Promise.resolve();
    expect(done).toBe(false);
    remote.answered(idOf(sent[0]), undefined);
    await admitted;
    expect(done).toBe(true);
  });

  it('is idle once every request is answered and every association that filed told its end', async () => {
    const { filer: remote, sent } = filer();
    const admitted = remote.admit(origin, info, '/p');
    remote.answered(idOf(sent[0]), undefined);
    await admitted;
    let idle = false;
    const waiting = remote.idle(60_000).then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    const ended = remote.endAssociation('a1');
    remote.answered(idOf(sent[1]), undefined);
    await ended;
    await waiting;
    expect(idle).toBe(true);
  });

  it('fails what waits, and what comes later, once the primary is gone', async () => {
    const { filer: remote } = filer();
    const waiting = remote.admit(origin, info, '/p');
    remote.disconnected();
    await expect(waiting).rejects.toBeInstanceOf(PrimaryGoneError);
    await expect(remote.endAssociation('a1')).rejects.toBeInstanceOf(PrimaryGoneError);
    const unreachable = filer(true).filer;
    await expect(unreachable.admit(origin, info, '/p')).rejects.toBeInstanceOf(PrimaryGoneError);
  });

  it('carries an origin without a recorded span as it is', () => {
    expect(decodeOrigin(encodeOrigin(origin))).toEqual(origin);
  });

  it('starts workers with the service node options but without export conditions', () => {
    expect(
      workerExecArgv([
        '--max-semi-space-size=1',
        '--conditions',
        'source',
        '-C',
        'x',
        '--conditions=y',
        '--expose-gc',
      ]),
    ).toEqual(['--max-semi-space-size=1', '--expose-gc']);
  });
});

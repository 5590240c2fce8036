import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceInfo } from '@dicomflow/dicom';
import { createLogger } from '@dicomflow/runtime';
import { Grouper, TooManyOpenGroupsError, type SealedGroup } from './grouper.js';
import { Spool } from './spool.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'grouper-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const origin = {
  associationId: 'a1',
  callingAeTitle: 'CT',
  calledAeTitle: 'STORESCP',
  callingHost: '127.0.0.1',
};

function info(studyInstanceUid: string, sopInstanceUid: string): InstanceInfo {
  return {
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    sopInstanceUid,
    studyInstanceUid,
    seriesInstanceUid: `${studyInstanceUid}.1`,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    modality: 'CT',
    size: 4,
    elements: {},
  };
}

describe('Grouper bound on open groups', () => {
  it('refuses a new study past the bound, still files instances of open ones, and opens again once one is sealed', async () => {
    const spool = new Spool(join(root, 'spool'), false);
    await spool.init();
    const sealed: SealedGroup[] = [];
    // A long timeout: groups are sealed only by close() here, never by a timer during the test.
    const grouper = new Grouper(
      spool,
      'study',
      60_000,
      (g) => sealed.push(g),
      createLogger({ service: 't', level: 'silent' }),
      2,
    );
    let n = 0;
    const admit = async (study: string): Promise<void> => {
      const path = spool.newIncomingPath();
      await writeFile(path, 'DICM');
      n += 1;
      await grouper.admit(origin, info(study, `1.2.3.${n}`), path);
    };
    await admit('1.1');
    await admit('1.2');
    await expect(admit('1.3')).rejects.toBeInstanceOf(TooManyOpenGroupsError);
    await admit('1.1'); // an open group still takes instances
    expect(grouper.openGroupCount()).toBe(2);
    await grouper.close();
    expect(sealed).toEqual([]); // close() leaves open groups in the spool for the next start
  });

  it('counts only open groups: sealed ones free their place', async () => {
    const spool = new Spool(join(root, 'spool-association'), false);
    await spool.init();
    const grouper = new Grouper(
      spool,
      'association',
      60_000,
      () => undefined,
      createLogger({ service: 't', level: 'silent' }),
      1,
    );
    const admit = async (associationId: string, uid: string): Promise<void> => {
      const path = spool.newIncomingPath();
      await writeFile(path, 'DICM');
      await grouper.admit({ ...origin, associationId }, info('1.9', uid), path);
    };
    await admit('a', '1.9.1');
    await expect(admit('b', '1.9.2')).rejects.toBeInstanceOf(TooManyOpenGroupsError);
    await grouper.endAssociation('a');
    await admit('b', '1.9.3');
    expect(grouper.openGroupCount()).toBe(1);
    await grouper.close();
  });
});

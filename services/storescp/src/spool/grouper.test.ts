import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DicomJsonDataset, InstanceInfo } from '@dicomflow/dicom';
import { createLogger } from '@dicomflow/runtime';
import type { SealReason } from './group-completion.js';
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

const silent = createLogger({ service: 't', level: 'silent' });

function info(
  studyInstanceUid: string,
  sopInstanceUid: string,
  elements: DicomJsonDataset = {},
): InstanceInfo {
  return {
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    sopInstanceUid,
    studyInstanceUid,
    seriesInstanceUid: `${studyInstanceUid}.1`,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    modality: 'CT',
    size: 4,
    elements,
  };
}

const IMAGES_IN_ACQUISITION = '00201002';
const NUMBER_OF_SERIES_RELATED_INSTANCES = '00201209';
const announcing = (count: number | string, tag = IMAGES_IN_ACQUISITION): DicomJsonDataset => ({
  [tag]: { vr: 'IS', Value: [count] },
});

describe('Grouper bound on open groups', () => {
  it('refuses a new study past the bound, still files instances of open ones, and opens again once one is sealed', async () => {
    const spool = new Spool(join(root, 'spool'), false);
    await spool.init();
    const sealed: SealedGroup[] = [];
    // A long timeout: groups are sealed only by close() here, never by a timer during the test.
    const grouper = new Grouper(
      spool,
      { grouping: 'study', groupTimeoutMs: 60_000, maxOpenGroups: 2 },
      (g) => sealed.push(g),
      silent,
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
      { grouping: 'association', groupTimeoutMs: 60_000, maxOpenGroups: 1 },
      () => undefined,
      silent,
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

describe('Grouper completion on the last instance', () => {
  const countTags = [NUMBER_OF_SERIES_RELATED_INSTANCES, IMAGES_IN_ACQUISITION];

  async function setUp(name: string): Promise<{
    grouper: Grouper;
    sealed: SealedGroup[];
    reasons: SealReason[];
    admit: (uid: string, elements?: DicomJsonDataset, study?: string) => Promise<void>;
  }> {
    const spool = new Spool(join(root, name), false);
    await spool.init();
    const sealed: SealedGroup[] = [];
    const reasons: SealReason[] = [];
    // A quiet period far longer than the test: only the count can complete a group here.
    const grouper = new Grouper(
      spool,
      { grouping: 'series', groupTimeoutMs: 600_000, countTags, onComplete: (r) => reasons.push(r) },
      (g) => sealed.push(g),
      silent,
    );
    const admit = async (uid: string, elements: DicomJsonDataset = {}, study = '2.1'): Promise<void> => {
      const path = spool.newIncomingPath();
      await writeFile(path, 'DICM');
      await grouper.admit(origin, info(study, uid, elements), path);
    };
    return { grouper, sealed, reasons, admit };
  }

  const settled = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));

  it('completes a series when its distinct instances reach the announced count; a repeat does not count', async () => {
    const { grouper, sealed, reasons, admit } = await setUp('count-basic');
    await admit('2.1.1', announcing(3));
    await admit('2.1.1', announcing(3)); // the same instance again
    await admit('2.1.2', announcing(3));
    await settled();
    expect(sealed).toEqual([]);
    await admit('2.1.3', announcing('3'));
    await settled();
    expect(sealed).toHaveLength(1);
    expect(reasons).toEqual(['count']);
    expect(grouper.openGroupCount()).toBe(0);
    // A later instance of the same series opens a new group, as after the quiet period.
    await admit('2.1.4', announcing(3));
    expect(grouper.openGroupCount()).toBe(1);
    await grouper.close();
  });

  it('takes the first count tag present, and the largest count any member announced', async () => {
    const { grouper, sealed, admit } = await setUp('count-largest');
    await admit('2.2.1', { ...announcing(2), ...announcing(4, NUMBER_OF_SERIES_RELATED_INSTANCES) }, '2.2');
    await admit('2.2.2', announcing(2), '2.2');
    await settled();
    expect(sealed).toEqual([]); // 4 was announced by the first tag of the first instance
    await admit('2.2.3', {}, '2.2');
    await admit('2.2.4', {}, '2.2');
    await settled();
    expect(sealed).toHaveLength(1);
    await grouper.close();
  });

  it('ignores counts that are not positive integers and waits for the quiet period instead', async () => {
    const { grouper, sealed, admit } = await setUp('count-bogus');
    await admit('2.3.1', announcing('0'), '2.3');
    await admit('2.3.2', announcing('-1'), '2.3');
    await admit('2.3.3', announcing('1.5'), '2.3');
    await admit('2.3.4', announcing('99999999999'), '2.3');
    await settled();
    expect(sealed).toEqual([]);
    expect(grouper.openGroupCount()).toBe(1);
    await grouper.close();
  });
});

import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashFlow, matchFlow, parseFlow, type LoadedFlow } from '@dicomflow/flows';
import { validateMessage, type ReceiptIndex } from '@dicomflow/messages';
import { fixtureInstance, studyReceivedFor } from '../testing/receipts.js';
import { planRuns } from './plan-runs.js';
import type { FlowMatch } from './read-receipt-index.js';
import { flowMatchedMessageIdFor, runIdFor } from './run-identity.js';

function loaded(file: string, yaml: string): LoadedFlow {
  const parsed = parseFlow(yaml, file);
  if (!parsed.ok) throw new Error(`fixture flow invalid: ${JSON.stringify(parsed.problems)}`);
  return { file, flow: parsed.flow, hash: hashFlow(parsed.flow) };
}

const CT = loaded(
  '/flows/ct.yaml',
  `name: CT
priority: 3
triggers:
  - Modality: ^CT$
    ImageType: ~LOCALIZER
models:
  - docker_kwargs: { image: busybox }
`,
);
const MR_AND_CT = loaded(
  '/flows/mr-and-ct.yaml',
  `name: MR and CT
triggers:
  - Modality: ^MR$
  - Modality: ^CT$
tar_subdir: [StudyInstanceUID, SeriesDescription]
`,
);
const PET = loaded('/flows/pet.yaml', 'triggers:\n  - Modality: ^PT$\n');

/** Each flow's decision on the index's files, as matchReceipt makes it while streaming the index. */
function matchesOf(index: ReceiptIndex, flows: readonly LoadedFlow[]): FlowMatch[] {
  return flows.map((loaded) => ({ loaded, result: matchFlow(loaded.flow, index.instances) }));
}

function receipt(): ReceiptIndex {
  return {
    receiptId: randomUUID(),
    instances: [
      fixtureInstance('ct/1.dcm', { Modality: 'CT', ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'] }),
      fixtureInstance('ct/scout.dcm', { Modality: 'CT', ImageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'] }),
      fixtureInstance('ct/2.dcm', { Modality: 'CT', ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'] }),
      fixtureInstance('sr/1.dcm', { Modality: 'SR' }),
    ],
  };
}

describe('planRuns', () => {
  it('starts one run per triggered flow with the selected members, priority and ids', () => {
    const index = receipt();
    const study = studyReceivedFor('incoming', index);
    const at = new Date('2026-01-02T03:04:05.000Z');
    const runs = planRuns(study, matchesOf(index, [PET, CT]), at);
    expect(runs).toHaveLength(1);
    const [run] = runs;
    const runId = runIdFor(index.receiptId, 'ct.yaml');
    expect(run?.messageId).toBe(flowMatchedMessageIdFor(runId));
    expect(run?.body).toEqual({
      runId,
      receiptId: index.receiptId,
      matchedAt: '2026-01-02T03:04:05.000Z',
      flowFile: 'ct.yaml',
      flow: CT.flow,
      flowHash: CT.hash,
      bucket: 'incoming',
      tarKey: study.tarKey,
      indexKey: study.indexKey,
      members: ['ct/1.dcm', 'ct/2.dcm'],
      tarSubdir: ['SeriesInstanceUID'],
      priority: 3,
      callingAeTitle: study.callingAeTitle,
      callingHost: study.callingHost,
    });
    expect(validateMessage('flow.matched', run?.body).ok).toBe(true);
  });

  it("takes the flow's tar_subdir over the receipt's, and orders runs by flow file name", () => {
    const index = {
      ...receipt(),
      instances: [...receipt().instances, fixtureInstance('mr/1.dcm', { Modality: 'MR' })],
    };
    const runs = planRuns(
      studyReceivedFor('incoming', index),
      matchesOf(index, [MR_AND_CT, PET, CT]),
      new Date(),
    );
    expect(runs.map((run) => run.body.flowFile)).toEqual(['ct.yaml', 'mr-and-ct.yaml']);
    const combined = runs[1]?.body;
    expect(combined?.tarSubdir).toEqual(['StudyInstanceUID', 'SeriesDescription']);
    expect(combined?.members).toEqual(['ct/1.dcm', 'ct/scout.dcm', 'ct/2.dcm', 'mr/1.dcm']);
    expect(combined?.priority).toBe(0);
    expect(runs[0]?.body.tarSubdir).toEqual(['SeriesInstanceUID']);
  });

  it('gives the same runs (ids, members, flow) when the same receipt is planned again', () => {
    const index = receipt();
    const study = studyReceivedFor('incoming', index);
    const first = planRuns(study, matchesOf(index, [CT, MR_AND_CT]), new Date(1000));
    const again = planRuns(
      { ...study, receivedAt: new Date().toISOString() },
      matchesOf(index, [CT]),
      new Date(),
    );
    expect(again.map((run) => run.messageId)).toEqual(first.map((run) => run.messageId));
    expect(again.map((run) => ({ ...run.body, matchedAt: '' }))).toEqual(
      first.map((run) => ({ ...run.body, matchedAt: '' })),
    );
  });

  it('starts nothing when no flow triggers, or there are no flows or no files', () => {
    const index = receipt();
    const study = studyReceivedFor('incoming', index);
    expect(planRuns(study, matchesOf(index, [PET]), new Date())).toEqual([]);
    expect(planRuns(study, matchesOf(index, []), new Date())).toEqual([]);
    const empty = { receiptId: index.receiptId, instances: [] };
    expect(planRuns(study, matchesOf(empty, [CT, PET]), new Date())).toEqual([]);
  });
});

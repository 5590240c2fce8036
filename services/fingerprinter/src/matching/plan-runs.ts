import { basename } from 'node:path';
import { matchFlow, type LoadedFlow, type MatchInstance } from '@dicomflow/flows';
import type { FlowMatched, ReceiptIndex, StudyReceived } from '@dicomflow/messages';
import { flowMatchedMessageIdFor, runIdFor } from './run-identity.js';

/** One run to start: the `flow.matched` body and the message id to publish it with. */
export interface PlannedRun {
  readonly messageId: string;
  readonly body: FlowMatched;
}

/**
 * Evaluates every flow against the receipt's files (`index`, already checked to belong to `study`) and
 * returns one run per triggered flow, in flow file name order. Pure: the same receipt, index and flows give
 * the same runs (ids included), whenever and however often it is called; only `matchedAt` differs.
 */
export function planRuns(
  study: StudyReceived,
  index: ReceiptIndex,
  flows: readonly LoadedFlow[],
  matchedAt: Date,
): PlannedRun[] {
  const instances: MatchInstance[] = index.instances.map(({ member, elements }) => ({ member, elements }));
  const runs: PlannedRun[] = [];
  for (const loaded of [...flows].sort((a, b) => compare(basename(a.file), basename(b.file)))) {
    const result = matchFlow(loaded.flow, instances);
    if (!result.triggered || result.selected.length === 0) continue;
    const flowFile = basename(loaded.file);
    const runId = runIdFor(study.receiptId, flowFile);
    runs.push({
      messageId: flowMatchedMessageIdFor(runId),
      body: {
        runId,
        receiptId: study.receiptId,
        matchedAt: matchedAt.toISOString(),
        flowFile,
        flow: loaded.flow,
        flowHash: loaded.hash,
        bucket: study.bucket,
        tarKey: study.tarKey,
        indexKey: study.indexKey,
        members: [...result.selected],
        tarSubdir: loaded.flow.tar_subdir.length > 0 ? [...loaded.flow.tar_subdir] : [...study.tarSubdir],
        priority: loaded.flow.priority,
        callingAeTitle: study.callingAeTitle,
        callingHost: study.callingHost,
      },
    });
  }
  return runs;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

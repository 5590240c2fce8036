import { basename } from 'node:path';
import type { FlowMatched, StudyReceived } from '@dicomflow/messages';
import type { FlowMatch } from './read-receipt-index.js';
import { flowMatchedMessageIdFor, runIdFor } from './run-identity.js';

/** One run to start: the `flow.matched` body and the message id to publish it with. */
export interface PlannedRun {
  readonly messageId: string;
  readonly body: FlowMatched;
}

/**
 * One run per flow that the receipt's files triggered (`matches`, see matchReceipt), in flow file name
 * order. Pure: the same receipt and matches give the same runs (ids included), whenever and however often
 * it is called; only `matchedAt` differs.
 */
export function planRuns(study: StudyReceived, matches: readonly FlowMatch[], matchedAt: Date): PlannedRun[] {
  const runs: PlannedRun[] = [];
  const ordered = [...matches].sort((a, b) => compare(basename(a.loaded.file), basename(b.loaded.file)));
  for (const { loaded, result } of ordered) {
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

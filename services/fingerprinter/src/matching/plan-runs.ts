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
  for (const match of ordered) {
    if (!match.result.triggered || match.result.selected.length === 0) continue;
    const runId = runIdFor(study.receiptId, basename(match.loaded.file));
    runs.push({
      messageId: flowMatchedMessageIdFor(runId),
      body: flowMatchedBody(runId, study, match, matchedAt),
    });
  }
  return runs;
}

/** The receipt facts a `flow.matched` repeats (from `study.received`, or a `flow.rerun`). */
export type ReceiptFacts = Pick<
  StudyReceived,
  'receiptId' | 'bucket' | 'tarKey' | 'indexKey' | 'tarSubdir' | 'callingAeTitle' | 'callingHost'
>;

/** The `flow.matched` of run `runId`: the flow `match` found triggered by the receipt. */
export function flowMatchedBody(
  runId: string,
  receipt: ReceiptFacts,
  { loaded, result }: FlowMatch,
  matchedAt: Date,
): FlowMatched {
  return {
    runId,
    receiptId: receipt.receiptId,
    matchedAt: matchedAt.toISOString(),
    flowFile: basename(loaded.file),
    flow: loaded.flow,
    flowHash: loaded.hash,
    bucket: receipt.bucket,
    tarKey: receipt.tarKey,
    indexKey: receipt.indexKey,
    members: [...result.selected],
    tarSubdir: loaded.flow.tar_subdir.length > 0 ? [...loaded.flow.tar_subdir] : [...receipt.tarSubdir],
    priority: loaded.flow.priority,
    callingAeTitle: receipt.callingAeTitle,
    callingHost: receipt.callingHost,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

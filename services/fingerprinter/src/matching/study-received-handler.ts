import type { Broker, MessageHandler } from '@dicomflow/broker';
import { inSpan, TransientError } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';
import type { FlowSnapshot } from '../flows/flow-snapshot.js';
import type { FingerprinterMetrics } from '../metrics.js';
import { planRuns } from './plan-runs.js';
import { matchReceipt } from './read-receipt-index.js';

/** What the `study.received` consumer needs. */
export interface StudyReceivedDeps {
  readonly storage: Pick<Storage, 'getStream'>;
  readonly broker: Pick<Broker, 'publish'>;
  /** The flows in force now; one snapshot serves a whole receipt. */
  readonly flows: () => FlowSnapshot;
  readonly metrics: FingerprinterMetrics;
}

/**
 * Handles one `study.received`: streams the receipt index through every flow and publishes one
 * `flow.matched` per triggered flow at the flow's priority, with the run id as correlation id. Resolves once
 * every publish is confirmed, so the receipt is acked only then. Idempotent: run ids and message ids are
 * derived from the receipt id and the flow file, so handling the same receipt again republishes the same
 * runs, which the scheduler drops as duplicates.
 */
export function studyReceivedHandler(deps: StudyReceivedDeps): MessageHandler<'study.received'> {
  return async (study, ctx) => {
    const snapshot = deps.flows();
    if (snapshot.directoryError !== undefined) {
      // Matching against no flow would silently drop the receipt; retry (then dead-letter) instead.
      throw new TransientError(`the flow directory cannot be read: ${snapshot.directoryError}`);
    }
    const stopTimer = deps.metrics.matchSeconds.startTimer();
    const { matched, runs } = await inSpan(
      'match',
      { attributes: { 'dicomflow.receipt_id': study.receiptId, 'dicomflow.flows': snapshot.flows.length } },
      async (span) => {
        const found = await matchReceipt(deps.storage, study, snapshot.flows);
        const planned = planRuns(study, found.matches, new Date());
        span.setAttribute('dicomflow.runs', planned.length);
        return { matched: found, runs: planned };
      },
    );
    for (const { messageId, body } of runs) {
      await deps.broker.publish('flow.matched', body, {
        messageId,
        correlationId: body.runId,
        priority: body.priority,
      });
      deps.metrics.runsStarted.inc({ flow: body.flowFile });
    }
    deps.metrics.receiptsMatched.inc();
    stopTimer();
    ctx.logger.info(
      {
        receiptId: study.receiptId,
        instances: matched.instances,
        flows: snapshot.flows.length,
        runs: runs.map(({ body }) => ({
          runId: body.runId,
          flowFile: body.flowFile,
          flowHash: body.flowHash,
          members: body.members.length,
          priority: body.priority,
        })),
      },
      runs.length === 0 ? 'receipt matched no flow' : 'receipt matched; runs published',
    );
  };
}

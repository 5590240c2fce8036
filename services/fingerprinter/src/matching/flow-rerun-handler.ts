import { basename } from 'node:path';
import type { Broker, MessageHandler } from '@dicomflow/broker';
import { flowFailedMessageId, type FlowFailureReason, type FlowRerun } from '@dicomflow/messages';
import { errorKind, TransientError, type Logger } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';
import type { FlowSnapshot } from '../flows/flow-snapshot.js';
import type { FingerprinterMetrics } from '../metrics.js';
import { flowMatchedBody } from './plan-runs.js';
import { matchReceipt } from './read-receipt-index.js';
import { flowMatchedMessageIdFor } from './run-identity.js';

/** What the `flow.rerun` consumer needs. */
export interface FlowRerunDeps {
  readonly storage: Pick<Storage, 'getStream'>;
  readonly broker: Pick<Broker, 'publish'>;
  /** The flows in force now. */
  readonly flows: () => FlowSnapshot;
  readonly metrics: FingerprinterMetrics;
}

/**
 * Handles one `flow.rerun`: matches the receipt against the version of the flow file loaded now (an
 * operator reruns after fixing the file) and publishes `flow.matched` for the new run, at the flow's
 * priority. When the file is not loaded any more, no longer triggers on the receipt, or the receipt is gone,
 * it publishes `flow.failed` for the new run instead, so that the operator sees why on the run. Idempotent:
 * the new run's id and message ids come from the request.
 */
export function flowRerunHandler(deps: FlowRerunDeps): MessageHandler<'flow.rerun'> {
  return async (request, ctx) => {
    const snapshot = deps.flows();
    if (snapshot.directoryError !== undefined)
      throw new TransientError(`the flow directory cannot be read: ${snapshot.directoryError}`);
    const log = ctx.logger.child({
      runId: request.runId,
      rerunOf: request.rerunOf,
      flowFile: request.flowFile,
    });
    const loaded = snapshot.flows.find((flow) => basename(flow.file) === request.flowFile);
    if (!loaded) {
      await failRerun(deps, request, log, {
        reason: 'error',
        message: `the flow file ${request.flowFile} is not loaded (deleted, renamed or invalid): fix it, then rerun`,
      });
      return;
    }
    let found;
    try {
      found = await matchReceipt(deps.storage, request, [loaded]);
    } catch (err) {
      if (errorKind(err) !== 'gone') throw err;
      await failRerun(deps, request, log, {
        reason: 'input',
        message: `the receipt ${request.receiptId} is gone: ${err instanceof Error ? err.message : String(err)}`,
      });
      return;
    }
    const match = found.matches[0];
    if (!match?.result.triggered || match.result.selected.length === 0) {
      await failRerun(deps, request, log, {
        reason: 'input',
        message: `the flow file ${request.flowFile} as loaded now does not trigger on receipt ${request.receiptId}`,
      });
      return;
    }
    const body = flowMatchedBody(request.runId, request, match, new Date());
    await deps.broker.publish('flow.matched', body, {
      messageId: flowMatchedMessageIdFor(request.runId),
      correlationId: request.runId,
      priority: body.priority,
    });
    deps.metrics.runsStarted.inc({ flow: body.flowFile });
    log.info({ members: body.members.length, flowHash: body.flowHash }, 'rerun matched; run published');
  };
}

async function failRerun(
  deps: FlowRerunDeps,
  request: FlowRerun,
  log: Logger,
  why: { reason: FlowFailureReason; message: string },
): Promise<void> {
  await deps.broker.publish(
    'flow.failed',
    {
      runId: request.runId,
      receiptId: request.receiptId,
      flowName: request.flowName,
      flowVersion: request.flowVersion,
      flowFile: request.flowFile,
      failedAt: new Date().toISOString(),
      reason: why.reason,
      message: why.message.slice(0, 4096),
    },
    { messageId: flowFailedMessageId(request.runId), correlationId: request.runId },
  );
  log.warn({ reason: why.reason, message: why.message }, 'rerun cannot start');
}

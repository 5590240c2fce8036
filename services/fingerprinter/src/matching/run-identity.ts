import { v5 as uuidv5 } from 'uuid';
import { DICOMFLOW_ID_NAMESPACE } from '@dicomflow/messages';

/**
 * The run id of `flowFile` triggered by receipt `receiptId`. Deterministic, so that a `study.received`
 * delivered twice (a redelivery after a crash, or storescp publishing the same receipt again) yields the
 * same run id, and the scheduler, which keeps one run per id, starts it once. The flow file name, not the
 * flow's hash, identifies the flow: a file edited between two deliveries of the same receipt must not
 * start a second run.
 */
export function runIdFor(receiptId: string, flowFile: string): string {
  return uuidv5(`run\n${receiptId.toLowerCase()}\n${flowFile}`, DICOMFLOW_ID_NAMESPACE);
}

/** The message id of a run's `flow.matched`, the same for every publish of it. */
export function flowMatchedMessageIdFor(runId: string): string {
  return uuidv5(`flow.matched\n${runId}`, DICOMFLOW_ID_NAMESPACE);
}

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  convertLittleEndian,
  isStoredStatus,
  isTransientStatus,
  StoreAssociation,
  type InstanceFile,
  type ProposedContext,
} from '@dicomflow/dicom';
import type { DimseSendTarget } from '@dicomflow/messages';
import { acknowledgePromptly, type TlsMaterial } from '@dicomflow/runtime';
import { planContexts, sendableSyntaxes } from './contexts.js';
import type { OutputInstance } from './output-feed.js';
import type { TargetQueue } from './target-queue.js';
import type { InstanceReport, TargetSession } from './target-session.js';

/** What the associations of a DICOM node need. */
export interface DimseSessionDeps {
  readonly callingAeTitle: string;
  /** No traffic for this long while connecting or awaiting an answer: the association fails. */
  readonly retry: { readonly timeoutMs: number };
  /** Folder for instances converted to another little endian syntax. */
  readonly scratchDir: string;
  readonly signal: AbortSignal;
  /** CA and client certificate for a node with `tls: true`; without a CA the system's are trusted. */
  readonly dimseTls?: TlsMaterial;
}

/**
 * Sends to a DICOM node with C-STORE: one association per {@link TargetSession.send}, reused for every
 * instance that comes while it is open (see sendOnce).
 */
export class DimseSession implements TargetSession {
  constructor(
    private readonly target: DimseSendTarget,
    private readonly deps: DimseSessionDeps,
  ) {}

  async send(queue: TargetQueue, report: InstanceReport, idleMs: number): Promise<void> {
    await sendOnce(this.target, queue, this.deps, report, idleMs);
  }

  close(): void {
    // Every association is released or aborted within send.
  }
}

/** Why an association ended without failing. */
type AssociationEnd =
  /** The output is read and everything at hand was sent. */
  | 'drained'
  /** The next instance needs a presentation context this association did not propose. */
  | 'new-context'
  /** Nothing new came from the download for a while: not worth holding the peer's association. */
  | 'idle';

/**
 * One association: proposes contexts for every instance at hand, then sends from the queue as instances
 * come. Rejects with a StoreScuError when the association fails; the instance in flight then goes back to
 * the queue (everything reported before stays settled).
 */
async function sendOnce(
  target: DimseSendTarget,
  queue: TargetQueue,
  deps: DimseSessionDeps,
  report: InstanceReport,
  idleMs: number,
): Promise<AssociationEnd> {
  const contexts = planContexts(queue.atHand());
  const association = await StoreAssociation.open({
    host: target.host,
    port: target.port,
    callingAeTitle: deps.callingAeTitle,
    calledAeTitle: target.aeTitle,
    contexts,
    timeoutMs: deps.retry.timeoutMs,
    ...(target.tls === true ? { tls: deps.dimseTls ?? {} } : {}),
    // A destination that leaves Nagle on (Debian's dcmtk storescp) would wait out our delayed ACKs.
    onSocket: acknowledgePromptly,
  });
  let inFlight: OutputInstance | undefined;
  let end: AssociationEnd;
  try {
    for (;;) {
      if (deps.signal.aborted) throw new Error('the sender is stopping');
      if (!queue.peek()) {
        const next = await queue.next(idleMs);
        if (next !== 'ready') {
          end = next === 'end' ? 'drained' : 'idle';
          break;
        }
      }
      const instance = queue.peek();
      if (!instance) continue;
      const syntaxes = sendableSyntaxes(instance.file.transferSyntaxUid);
      const context = association.contextFor(instance.file.sopClassUid, syntaxes);
      if (!context && !proposedFor(contexts, instance.file.sopClassUid, syntaxes)) {
        end = 'new-context';
        break;
      }
      inFlight = queue.take();
      if (!context) {
        inFlight = undefined;
        report.onRefused(
          instance,
          undefined,
          `the node accepted no presentation context for SOP class ${instance.file.sopClassUid} in transfer syntax ${instance.file.transferSyntaxUid}`,
        );
        continue;
      }
      let file: InstanceFile = instance.file;
      let converted: string | undefined;
      if (context.transferSyntaxUid !== file.transferSyntaxUid) {
        converted = join(deps.scratchDir, `converted-${process.hrtime.bigint()}.dcm`);
        try {
          file = await convertLittleEndian(file, context.transferSyntaxUid, converted);
        } catch (err) {
          await rm(converted, { force: true });
          inFlight = undefined;
          report.onRefused(
            instance,
            undefined,
            `cannot convert to ${context.transferSyntaxUid}, the only syntax the node accepted: ${(err as Error).message}`,
          );
          continue;
        }
      }
      try {
        const response = await association.store(file, context.id, queue.peek()?.file);
        inFlight = undefined;
        const text = `C-STORE status 0x${hex(response.status)}${response.errorComment ? `: ${response.errorComment}` : ''}`;
        if (isStoredStatus(response.status)) await report.onStored(instance, response.status);
        else if (isTransientStatus(response.status)) report.onDeferred(instance, response.status, text);
        else report.onRefused(instance, response.status, text);
      } finally {
        if (converted) await rm(converted, { force: true });
      }
    }
  } catch (err) {
    association.abort();
    if (inFlight) queue.putBack([inFlight]);
    throw err;
  }
  await association.release();
  return end;
}

/** True when `contexts` offered the SOP class in every syntax the instance can go out in. */
function proposedFor(
  contexts: readonly ProposedContext[],
  sopClassUid: string,
  syntaxes: readonly string[],
): boolean {
  return syntaxes.every((syntax) =>
    contexts.some((c) => c.abstractSyntax === sopClassUid && c.transferSyntaxes.includes(syntax)),
  );
}

const hex = (status: number): string => status.toString(16).toUpperCase().padStart(4, '0');

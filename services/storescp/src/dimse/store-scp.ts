import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { acknowledgePromptly, startSpan, traceContextOf, type Logger, type Span } from '@dicomflow/runtime';
import type { InstanceOrigin } from '../spool/grouper.js';
import type { Spool } from '../spool/spool.js';
import type { ReceiverMetrics } from '../metrics.js';
import { AssociationGate } from './association-gate.js';
import { ContextResult, type AssociationPolicy } from './association-policy.js';
import {
  C_STORE_RQ,
  CEchoResponse,
  CStoreResponse,
  Dataset,
  Scp,
  StoreStatus,
  type Association,
  type CEchoRequest,
  type CEchoResponseType,
  type CStoreRequest,
  type CStoreResponseType,
  type DatasetType,
  type PresentationContext,
  type StoreStatusCode,
} from './dimse.js';
import { sendCommandWithoutDataset } from './command-sender.js';
import {
  fileInGroup,
  inspectWritten,
  sopInstanceUidProblem,
  type InstanceFiler,
  type Received,
} from './instance-filing.js';
import { internalsOf, libraryNetwork, type DimseMessage } from './network-internals.js';
import { part10Prefix } from './part10-prefix.js';
import { wireSocket } from './socket-wiring.js';
import { SpoolFileReserve } from './spool-file-reserve.js';
import { SpoolWriteStream } from './spool-write-stream.js';
import { AbortReason, abortPdu, associateRjPdu } from './upper-layer-pdus.js';

/** Longest wait for a whole A-ASSOCIATE-RQ after connecting (PS3.8's ARTIM default). */
const MAX_ASSOCIATION_REQUEST_MS = 30_000;

/** What every association of the receiver shares. */
export interface StoreScpContext {
  readonly policy: AssociationPolicy;
  /** Only new instance files and their removal: a receiver worker process files through the primary. */
  readonly spool: Pick<Spool, 'newIncomingPath' | 'discard' | 'readOptions'>;
  readonly grouper: InstanceFiler;
  readonly metrics: ReceiverMetrics;
  readonly logger: Logger;
  readonly fsync: boolean;
  /** Largest dataset of one C-STORE kept (MAX_INSTANCE_BYTES); a larger one is answered 0xA700. */
  readonly maxInstanceBytes?: number;
  /** Largest PDU we accept (announced in A-ASSOCIATE-AC). */
  readonly maxPduLength: number;
  /** Associations open now, this one excluded. */
  readonly openAssociations: () => number;
  /** Associations open in the other receiver processes (MAX_ASSOCIATIONS counts them all); none by default. */
  readonly associationsElsewhere?: () => number;
  readonly dimseOptions: { associationTimeout: number; pduTimeout: number; connectTimeout: number };
  /**
   * Time a connection gets to deliver its whole A-ASSOCIATE-RQ, however slowly it sends (the idle timeout
   * alone lets one byte a minute hold a connection forever); default: the association timeout, at most 30 s.
   */
  readonly associationRequestTimeout?: number;
}

/**
 * One association with a sender: negotiates by the {@link AssociationPolicy}, streams each instance to the
 * spool as it arrives, answers success only once the instance is filed in its group, and hands the group
 * over when the association ends, however it ends.
 */
export class StoreScp extends Scp {
  private readonly id = randomUUID();
  private readonly log: Logger;
  private origin: InstanceOrigin | undefined;
  private current: SpoolWriteStream | undefined;
  private readonly received = new WeakMap<object, Received>();
  private reserve: SpoolFileReserve | undefined;
  private ended = false;
  private readonly gate: AssociationGate;
  /** The association's span, from its acceptance to its end: where each receipt's trace starts. */
  private span: Span | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: StoreScpContext,
  ) {
    super(socket, ctx.dimseOptions);
    // A sender that leaves Nagle on (Debian's dcmtk) would otherwise wait out our delayed ACK per message.
    acknowledgePromptly(socket);
    this.log = ctx.logger.child({ associationId: this.id, remote: socket.remoteAddress });
    this.gate = new AssociationGate(internalsOf(this), {
      requestTimeoutMs:
        ctx.associationRequestTimeout ??
        Math.min(MAX_ASSOCIATION_REQUEST_MS, ctx.dimseOptions.associationTimeout),
      log: this.log,
      onRequestRefused: (reason) => ctx.metrics.associationsRejected.inc({ reason }),
      onClosing: () => void this.end('aborted'),
      onCommandRefused: (why, status, commandField) => {
        const hex = status.toString(16);
        this.log.warn({ why, status: `0x${hex.padStart(4, '0')}`, commandField }, 'request refused');
        if (commandField === C_STORE_RQ) this.ctx.metrics.instancesRefused.inc({ status: hex });
      },
    });
    this.on('close', () => {
      this.gate.dispose();
      void this.end('closed');
    });
    this.on('networkError', (err: Error) => {
      this.log.warn({ err: err.message }, 'association network error');
      // Closing after our answer: the peer gets the time to read it (the gate cuts the connection later).
      if (!this.gate.closing) socket.destroy();
    });
  }

  /**
   * Replaces the library's private `Network#_wrapSocket` (its base constructor calls it, so this runs
   * before our fields are initialised and must not use them): same socket handling, but PDUs are framed
   * without the library's per-chunk concatenation ({@link wireSocket}) and pass the
   * {@link AssociationGate} (A-ASSOCIATE-RQ checked and bounded before the library parses it, P-DATA-TF
   * handled by our own receiver). The hooks reach the gate only when PDUs arrive, after construction.
   */
  protected _wrapSocket(): void {
    wireSocket(
      internalsOf(this),
      AssociationGate.hooks(() => this.gate),
    );
  }

  /**
   * Replaces the library's private `Network#_sendPDataTF` for messages without a dataset (all our
   * responses), which it encodes through dcmjs at the cost of 512 KiB of zero-filled buffers each; see
   * {@link sendCommandWithoutDataset}. Anything else still goes through the library.
   */
  protected _sendPDataTF(message: DimseMessage, contextId: number, maxPduLength: number): void {
    if (sendCommandWithoutDataset(internalsOf(this), message, contextId)) return;
    libraryNetwork._sendPDataTF.call(this, message, contextId, maxPduLength);
  }

  override associationRequested(association: Association): void {
    try {
      this.review(association);
    } catch (err) {
      // Called from the library's event emitter: a throw here would escape the event loop and end the
      // process. The checked request makes this unexpected; the peer hears an A-ABORT.
      this.log.error({ err }, 'answering the association request failed');
      this.ctx.metrics.associationsRejected.inc({ reason: 'accept failed' });
      this.gate.closeWith(abortPdu(AbortReason.NotSpecified), 'answering the association request failed');
    }
  }

  /** Rejects by the policy, or accepts the contexts it allows and opens the P-DATA path for them. */
  private review(association: Association): void {
    const facts = {
      callingAeTitle: association.getCallingAeTitle(),
      calledAeTitle: association.getCalledAeTitle(),
      remoteAddress: this.socket.remoteAddress ?? '',
      openAssociations: this.ctx.openAssociations() + (this.ctx.associationsElsewhere?.() ?? 0),
    };
    const rejection = this.ctx.policy.reviewAssociation(facts);
    if (rejection) {
      this.ctx.metrics.associationsRejected.inc({ reason: rejection.why });
      this.ended = true;
      this.gate.closeWith(
        associateRjPdu(rejection.result, rejection.source, rejection.reason),
        rejection.why,
        {
          callingAeTitle: facts.callingAeTitle,
          calledAeTitle: facts.calledAeTitle,
        },
      );
      return;
    }
    const accepted = new Map<number, PresentationContext>();
    for (const { context } of association.getPresentationContexts()) {
      const decision = this.ctx.policy.reviewContext(
        context.getAbstractSyntaxUid(),
        context.getTransferSyntaxUids(),
      );
      if (decision.accept) {
        context.setResult(ContextResult.Accept, decision.transferSyntaxUid);
        accepted.set(context.getPresentationContextId(), context);
      } else {
        context.setResult(decision.result);
      }
    }
    this.span = startSpan('association', {
      kind: 'server',
      root: true,
      attributes: {
        'dicomflow.association_id': this.id,
        'dicom.calling_ae_title': facts.callingAeTitle,
        'dicom.called_ae_title': facts.calledAeTitle,
        'network.peer.address': facts.remoteAddress,
      },
    });
    this.origin = {
      associationId: this.id,
      callingAeTitle: facts.callingAeTitle,
      calledAeTitle: facts.calledAeTitle,
      callingHost: facts.remoteAddress,
      trace: traceContextOf(this.span),
    };
    this.log.info({ callingAeTitle: facts.callingAeTitle }, 'association accepted');
    this.ctx.metrics.associationsAccepted.inc();
    // The library announces min(requestor's max PDU, ours); what we can receive does not depend on the
    // requestor, and larger PDUs cost far less per byte.
    association.setMaxPduLength(this.ctx.maxPduLength);
    this.sendAssociationAccept();
    this.gate.accepted(accepted);
    const { spool } = this.ctx;
    this.reserve = new SpoolFileReserve(
      () => spool.newIncomingPath(),
      undefined,
      (path) => spool.discard(path),
    );
    this.reserve.prepareSoon();
  }

  override associationReleaseRequested(): void {
    this.sendAssociationReleaseResponse();
    void this.end('released');
  }

  override abort(): void {
    void this.end('aborted');
    // PS3.8 9.1.5: after an A-ABORT the transport connection is closed; the sender waits for it otherwise.
    this.socket.destroy();
  }

  override cEchoRequest(request: CEchoRequest, callback: (response: CEchoResponseType) => void): void {
    const response = CEchoResponse.fromRequest(request);
    response.setStatus(StoreStatus.Success);
    callback(response);
  }

  override createStoreWritableStream(context: PresentationContext, request: CStoreRequest): SpoolWriteStream {
    const transferSyntaxUid = context.getAcceptedTransferSyntaxUid() ?? '';
    const prefix = part10Prefix({
      sopClassUid: request.getAffectedSopClassUid(),
      sopInstanceUid: request.getAffectedSopInstanceUid(),
      transferSyntaxUid,
      sourceAeTitle: this.origin?.callingAeTitle ?? '',
    });
    const spare = this.reserve?.takeSpare();
    const stream = new SpoolWriteStream(
      spare?.path ?? this.ctx.spool.newIncomingPath(),
      prefix,
      transferSyntaxUid,
      this.ctx.fsync,
      spare?.fd,
      // Alone, copying inline is cheaper than the thread pool's hand-off; with others, the pool spreads it.
      this.ctx.openAssociations() === 0,
      this.ctx.spool.readOptions,
      this.ctx.maxInstanceBytes,
    );
    stream.on('error', () => undefined); // reported through `finished` below
    this.current = stream;
    return stream;
  }

  override createDatasetFromStoreWritableStream(
    writable: SpoolWriteStream,
    _context: PresentationContext,
    callback: (dataset: DatasetType) => void,
  ): void {
    const dataset = new Dataset({}, _context.getAcceptedTransferSyntaxUid());
    void inspectWritten(writable, this.log).then((outcome) => {
      this.received.set(dataset, outcome);
      if (this.current === writable) this.current = undefined;
      callback(dataset);
    });
  }

  override cStoreRequest(request: CStoreRequest, callback: (response: CStoreResponseType) => void): void {
    void this.store(request).then(({ status, comment }) => {
      const response = CStoreResponse.fromRequest(request);
      response.setStatus(status);
      if (comment) response.setErrorComment(comment.slice(0, 64));
      callback(response);
      // The sender now works out its next instance; meanwhile that instance's file is created.
      this.reserve?.prepareSoon();
    });
  }

  private async store(request: CStoreRequest): Promise<{ status: StoreStatusCode; comment?: string }> {
    const dataset = request.getDataset();
    const received = dataset ? this.received.get(dataset) : undefined;
    if (!received || !this.origin)
      return { status: StoreStatus.CannotUnderstand, comment: 'no dataset received' };
    if (!received.ok) return this.refuse(received.path, received.status, received.reason);
    const { info, path } = received;
    const badUid = sopInstanceUidProblem(info);
    if (badUid) return this.refuse(path, badUid.status, badUid.reason);
    if (
      info.sopInstanceUid !== request.getAffectedSopInstanceUid() ||
      info.sopClassUid !== request.getAffectedSopClassUid()
    ) {
      return this.refuse(
        path,
        StoreStatus.DataSetDoesNotMatchSopClass,
        'dataset UIDs differ from the C-STORE command',
      );
    }
    if (this.ended) return this.refuse(path, StoreStatus.OutOfResources, 'association already ended');
    const refusal = await fileInGroup(this.ctx.grouper, this.origin, info, path, this.log);
    if (refusal) return this.refuse(path, refusal.status, refusal.reason);
    this.ctx.metrics.instancesStored.inc();
    this.ctx.metrics.bytesStored.inc(info.size);
    return { status: StoreStatus.Success };
  }

  private async refuse(
    path: string,
    status: StoreStatusCode,
    reason: string,
  ): Promise<{ status: StoreStatusCode; comment: string }> {
    this.log.warn({ status: `0x${status.toString(16).padStart(4, '0')}`, reason }, 'instance refused');
    this.ctx.metrics.instancesRefused.inc({ status: status.toString(16) });
    await this.ctx.spool.discard(path).catch(() => undefined);
    return { status, comment: reason };
  }

  /** However the association ends, what it stored is kept and its group handed over. Runs once. */
  private async end(how: 'released' | 'aborted' | 'closed'): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.reserve?.close();
    const partial = this.current;
    if (partial && !partial.writableFinished) {
      partial.destroy();
      await this.ctx.spool.discard(partial.path).catch(() => undefined);
    }
    if (!this.origin) return;
    this.log.info({ how }, 'association ended');
    try {
      await this.ctx.grouper.endAssociation(this.id);
    } catch (err) {
      this.log.error({ err }, 'sealing the association group failed; the spool keeps it for the next start');
    }
    this.span?.setAttribute('dicomflow.association.end', how);
    this.span?.end();
  }
}

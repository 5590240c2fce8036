import type { Logger } from '@dicomflow/runtime';
import { checkAssociateRq, limitRejection, MAX_ASSOCIATE_RQ_LENGTH } from './associate-rq-check.js';
import { Implementation, type PresentationContext } from './dimse.js';
import type { NetworkInternals } from './network-internals.js';
import { PDataReceiver } from './p-data-receiver.js';
import { joinPdu, pduLengthLimit, PduTooLongError, type FramedPdu, type FramingError } from './pdu-framer.js';
import type { PduHooks } from './socket-wiring.js';
import { AbortReason, abortPdu, PduType } from './upper-layer-pdus.js';

/**
 * After we answered with an A-ASSOCIATE-RJ or A-ABORT and half-closed, how long the peer has to close the
 * connection before it is cut (PS3.8's ARTIM timer; cutting at once could reset the connection before
 * the peer read the answer).
 */
const LINGER_MS = 5_000;

type Phase = 'awaiting-request' | 'associated' | 'closing';

/** What the gate needs from its association. */
export interface GateOptions {
  /** Time a connection gets to deliver a whole A-ASSOCIATE-RQ, however slowly its bytes come. */
  readonly requestTimeoutMs: number;
  readonly log: Logger;
  /** A request refused before the association policy saw it, for the metrics (a fixed label). */
  readonly onRequestRefused: (reason: string) => void;
  /** We answered and are closing: what was received so far must be kept. */
  readonly onClosing: () => void;
  /** A DIMSE request answered with a failure status by the P-DATA receiver itself. */
  readonly onCommandRefused: (why: string, status: number, commandField: number) => void;
}

/**
 * Stands between the socket's PDUs and dcmjs-dimse for one connection, so that nothing the peer sends
 * reaches a library step that is unbounded in it or can throw out of the event loop:
 *
 * - Before the association: only an A-ASSOCIATE-RQ (or A-ABORT) is taken, at most
 *   {@link MAX_ASSOCIATE_RQ_LENGTH} bytes, checked by {@link checkAssociateRq} before the library parses
 *   it, and within `requestTimeoutMs` of connecting; anything else is answered and closed.
 * - Once associated: P-DATA-TF goes to our {@link PDataReceiver}, never to the library; release and abort
 *   PDUs go to the library; another A-ASSOCIATE-* is a protocol error (A-ABORT).
 * - After an answer that ends the connection, everything is dropped until it closes.
 */
export class AssociationGate {
  private phase: Phase = 'awaiting-request';
  private pdata: PDataReceiver | undefined;
  private requestTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly network: NetworkInternals,
    private readonly options: GateOptions,
  ) {
    this.requestTimer = setTimeout(() => {
      this.requestTimer = undefined;
      this.options.log.warn('no complete A-ASSOCIATE-RQ in time; connection closed');
      this.options.onRequestRefused('request timeout');
      this.phase = 'closing';
      network.socket.destroy();
    }, options.requestTimeoutMs);
    this.requestTimer.unref();
  }

  /** The hooks for {@link wireSocket}; they call into the gate only once PDUs arrive. */
  static hooks(gate: () => AssociationGate): PduHooks {
    return {
      takePdu: (pdu) => gate().route(pdu),
      lengthLimit: () => gate().lengthLimit(),
      refuseUnframeable: (error) => gate().refuseUnframeable(error),
      timedOut: () => gate().timedOut(),
    };
  }

  /** True once we answered in a way that ends the connection. */
  get closing(): boolean {
    return this.phase === 'closing';
  }

  /** The association was accepted with these presentation contexts (by ID); P-DATA-TF may flow. */
  accepted(contexts: ReadonlyMap<number, PresentationContext>): void {
    this.pdata = new PDataReceiver(this.network, contexts, {
      abort: (why) => this.closeWith(abortPdu(AbortReason.InvalidPduParameterValue), why),
      refused: (why, status, commandField) => this.options.onCommandRefused(why, status, commandField),
    });
  }

  /**
   * Sends `answer` (an A-ASSOCIATE-RJ or A-ABORT), half-closes, drops whatever else comes, and cuts the
   * connection if the peer has not closed it after {@link LINGER_MS}. Once only.
   */
  closeWith(answer: Buffer, why: string, logFields: Record<string, unknown> = {}): void {
    if (this.phase === 'closing') return;
    this.phase = 'closing';
    this.clearRequestTimer();
    const what = answer[0] === PduType.Abort ? 'association aborted' : 'association rejected';
    this.options.log.warn({ ...logFields, why }, what);
    const { socket } = this.network;
    socket.end(answer);
    this.lingerTimer = setTimeout(() => socket.destroy(), LINGER_MS);
    this.lingerTimer.unref();
    this.options.onClosing();
  }

  /** The connection closed: no timer may outlive it. */
  dispose(): void {
    this.clearRequestTimer();
    clearTimeout(this.lingerTimer);
  }

  private route(pdu: FramedPdu): boolean {
    switch (this.phase) {
      case 'closing':
        return true;
      case 'awaiting-request':
        return this.routeBeforeAssociation(pdu);
      case 'associated':
        return this.routeAssociated(pdu);
    }
  }

  private routeBeforeAssociation(pdu: FramedPdu): boolean {
    if (pdu.type === PduType.Abort) return false; // the library reports it; the connection closes
    if (pdu.type !== PduType.AssociateRq) {
      this.closeWith(abortPdu(AbortReason.UnexpectedPdu), `PDU type ${pdu.type} before A-ASSOCIATE-RQ`);
      return true;
    }
    this.clearRequestTimer();
    const bytes = joinPdu(pdu);
    const verdict = checkAssociateRq(bytes);
    if (!verdict.ok) {
      this.options.onRequestRefused(
        verdict.kind === 'reject' ? 'request beyond limits' : 'malformed request',
      );
      this.closeWith(verdict.answer, verdict.why);
      return true;
    }
    // The library parses it and calls associationRequested, which accepts or rejects.
    this.phase = 'associated';
    void this.network._processPdu(bytes);
    return true;
  }

  private routeAssociated(pdu: FramedPdu): boolean {
    switch (pdu.type) {
      case PduType.PDataTf:
        if (this.pdata) this.pdata.take(pdu);
        else
          this.closeWith(
            abortPdu(AbortReason.UnexpectedPdu),
            'P-DATA-TF before the association was accepted',
          );
        return true;
      case PduType.ReleaseRq:
      case PduType.ReleaseRp:
      case PduType.Abort:
        return false;
      default:
        this.closeWith(
          abortPdu(AbortReason.UnexpectedPdu),
          `unexpected PDU type ${pdu.type} in an association`,
        );
        return true;
    }
  }

  /**
   * The peer went silent past the idle timeout, e.g. in the middle of a PDU that claimed more bytes than
   * it sent. Once associated it hears an A-ABORT (PS3.8 A-P-ABORT) rather than a bare close; before, the
   * connection is just closed (PS3.8 AA-2).
   */
  private timedOut(): boolean {
    if (this.phase !== 'associated') return false;
    this.closeWith(abortPdu(AbortReason.NotSpecified), 'no data within the idle timeout');
    return true;
  }

  /** Before the association, no PDU needs more than an A-ASSOCIATE-RQ may take. */
  private lengthLimit(): number {
    return this.phase === 'associated'
      ? pduLengthLimit(Implementation.getMaxPduLength())
      : MAX_ASSOCIATE_RQ_LENGTH;
  }

  /** A-ASSOCIATE-RJ for a request too long to be one we take; A-ABORT for anything else unframeable. */
  private refuseUnframeable(error: FramingError): void {
    if (!(error instanceof PduTooLongError)) {
      this.closeWith(abortPdu(AbortReason.UnrecognizedPdu), error.message);
      return;
    }
    if (this.phase === 'awaiting-request' && error.pduType === PduType.AssociateRq) {
      const refusal = limitRejection(error.message);
      this.options.onRequestRefused('request beyond limits');
      this.closeWith(refusal.answer, refusal.why);
      return;
    }
    this.closeWith(abortPdu(AbortReason.InvalidPduParameterValue), error.message);
  }

  private clearRequestTimer(): void {
    clearTimeout(this.requestTimer);
    this.requestTimer = undefined;
  }
}

import type { Writable } from 'node:stream';
import { sendCommandElements } from './command-sender.js';
import { commandEssentials, decodeCommandSet, MAX_COMMAND_SET_LENGTH, NO_DATASET } from './command-set.js';
import {
  C_CANCEL_RQ,
  C_ECHO_RQ,
  C_STORE_RQ,
  CEchoRequestClass,
  CStoreRequestClass,
  Dataset,
  dimseLog,
  DimseStatus,
  RESPONSE_BIT,
  StoreStatus,
  type CEchoRequest,
  type CStoreRequest,
  type PresentationContext,
} from './dimse.js';
import type { NetworkInternals } from './network-internals.js';
import type { FramedPdu } from './pdu-framer.js';
import { splitPdvs, type Pdv } from './pdv-split.js';
import { PieceCoalescer } from './piece-coalescer.js';

/** What the association does when the peer breaks the protocol or is refused a request. */
export interface PDataEvents {
  /** The peer broke the protocol: A-ABORT and close; nothing more is read. */
  abort(why: string): void;
  /** A request was answered with a failure status without reaching its handler (for log and metrics). */
  refused(why: string, status: number, commandField: number): void;
}

/** A request answered here, once its dataset (if any) has gone by. */
interface Refusal {
  readonly contextId: number;
  readonly commandField: number;
  readonly elements: Readonly<Record<string, unknown>>;
  readonly why: string;
  readonly status: number;
}

type State =
  | { readonly kind: 'idle' }
  | { readonly kind: 'command'; readonly contextId: number; readonly pieces: Buffer[]; bytes: number }
  | {
      readonly kind: 'store';
      readonly contextId: number;
      readonly context: PresentationContext;
      readonly request: CStoreRequest;
      readonly pending: PieceCoalescer;
      stream: Writable | undefined;
    }
  /** The dataset of a message not served goes by unread; then `refusal`, if any, is answered. */
  | { readonly kind: 'discard'; readonly contextId: number; readonly refusal: Refusal | undefined }
  | { readonly kind: 'aborted' };

const IDLE: State = { kind: 'idle' };

/**
 * Receives the P-DATA-TF PDUs of one association, in place of the library's `Network#_processPDataTf`
 * (its RawPdu/PDataTF objects and copy of every PDU, its memory stream, whose per-write cost grows with
 * what it holds, and dcmjs's parse of every command set and of the datasets of other commands, with
 * quadratic trims): every step here is linear in the bytes received and bounded per message.
 *
 * - Command sets are collected as a list of pieces, at most {@link MAX_COMMAND_SET_LENGTH} bytes, joined
 *   once and read by {@link decodeCommandSet} only.
 * - A C-STORE-RQ's dataset goes into the store stream as it arrives, small PDVs copied together
 *   ({@link PieceCoalescer}), one write per PDU; the last fragment finishes the C-STORE as the library does.
 * - A C-ECHO-RQ goes to the library's handler. Any other request, a command set that cannot be read,
 *   and a C-ECHO with a dataset are answered with a failure status here once their dataset, never
 *   buffered, has gone by. Responses and C-CANCEL are ignored.
 * - PDVs on a presentation context that was not accepted, fragments out of order, a command set that is
 *   too long or unreadable beyond answering, or a PDU whose PDVs do not fill it: A-ABORT.
 */
export class PDataReceiver {
  private state: State = IDLE;

  constructor(
    private readonly network: NetworkInternals,
    /** The accepted presentation contexts by ID (built once at accept time: no search per PDV). */
    private readonly contexts: ReadonlyMap<number, PresentationContext>,
    private readonly events: PDataEvents,
  ) {}

  /** Handles one P-DATA-TF PDU. Never throws: a failure aborts the association. */
  take(pdu: FramedPdu): void {
    if (this.state.kind === 'aborted') return;
    try {
      const pdvs = splitPdvs(pdu);
      if (!pdvs) {
        this.abort('P-DATA-TF whose PDV items do not fill it');
        return;
      }
      for (const pdv of pdvs) {
        this.step(pdv);
        if (this.aborted()) return;
      }
      if (this.state.kind === 'store') this.flush(this.state);
    } catch (err) {
      this.abort(`handling a P-DATA-TF failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** A method, not a field test: the type checker would keep the narrowing from before a step. */
  private aborted(): boolean {
    return this.state.kind === 'aborted';
  }

  private step(pdv: Pdv): void {
    const state = this.state;
    const context = this.contexts.get(pdv.contextId);
    if (!context) {
      this.abort(`PDV on presentation context ${pdv.contextId}, which was not accepted`);
      return;
    }
    if (pdv.command) {
      if (state.kind === 'idle') {
        this.state = { kind: 'command', contextId: pdv.contextId, pieces: [], bytes: 0 };
      } else if (state.kind !== 'command' || state.contextId !== pdv.contextId) {
        this.abort('command fragment while a dataset or another command was in progress');
        return;
      }
      this.collectCommand(pdv, context);
      return;
    }
    if (state.kind === 'store' && state.contextId === pdv.contextId) {
      for (const piece of pdv.value) state.pending.add(piece);
      if (pdv.last) this.finishStore(state);
    } else if (state.kind === 'discard' && state.contextId === pdv.contextId) {
      if (!pdv.last) return;
      this.state = IDLE;
      if (state.refusal) this.answer(state.refusal);
    } else {
      this.abort('dataset fragment without its command on this presentation context');
    }
  }

  private collectCommand(pdv: Pdv, context: PresentationContext): void {
    const state = this.state;
    if (state.kind !== 'command') return;
    for (const piece of pdv.value) {
      state.bytes += piece.length;
      if (state.bytes > MAX_COMMAND_SET_LENGTH) {
        this.abort(`command set longer than ${MAX_COMMAND_SET_LENGTH} bytes`);
        return;
      }
      state.pieces.push(piece);
    }
    if (!pdv.last) return;
    this.state = IDLE;
    this.commandComplete(state.contextId, context, Buffer.concat(state.pieces, state.bytes));
  }

  private commandComplete(contextId: number, context: PresentationContext, bytes: Buffer): void {
    const elements = decodeCommandSet(bytes);
    const field = elements?.CommandField;
    const messageId = elements?.MessageID;
    const dataSetType = elements?.CommandDataSetType;
    if (
      !elements ||
      typeof field !== 'number' ||
      typeof messageId !== 'number' ||
      typeof dataSetType !== 'number'
    ) {
      const essentials = commandEssentials(bytes);
      if (!essentials) {
        this.abort('command set without a readable CommandField, MessageID and CommandDataSetType');
        return;
      }
      const { commandField, messageId: id, datasetFollows } = essentials;
      this.refuse(contextId, commandField, id, datasetFollows, {
        status: StoreStatus.CannotUnderstand,
        why: 'command set not understood',
      });
      return;
    }
    const datasetFollows = dataSetType !== NO_DATASET;
    const refusal = (status: number, why: string): void =>
      this.refuse(contextId, field, messageId, datasetFollows, { status, why, elements });
    if (field === C_STORE_RQ) {
      const problem = storeRequestProblem(elements, datasetFollows);
      if (problem) refusal(problem.status, problem.why);
      else this.startStore(contextId, context, elements);
    } else if (field === C_ECHO_RQ) {
      if (datasetFollows) refusal(StoreStatus.CannotUnderstand, 'C-ECHO-RQ with a dataset');
      else this.network._performDimse(context, libraryRequest(ECHO_REQUEST, elements));
    } else if (field === C_CANCEL_RQ || (field & RESPONSE_BIT) !== 0) {
      // Not answered (PS3.7 9.3.2.3; we send no requests); a dataset of theirs is dropped.
      if (datasetFollows) this.state = { kind: 'discard', contextId, refusal: undefined };
    } else {
      refusal(DimseStatus.UnrecognizedOperation, `DIMSE command 0x${field.toString(16)} not served`);
    }
  }

  /** Answers a request with a failure status, at once or after its dataset (dropped unread). */
  private refuse(
    contextId: number,
    commandField: number,
    messageId: number,
    datasetFollows: boolean,
    failure: { status: number; why: string; elements?: Readonly<Record<string, unknown>> },
  ): void {
    const { status, why, elements } = failure;
    const refusal: Refusal = {
      contextId,
      commandField,
      why,
      status,
      elements: {
        // In a response, as in the request (PS3.7 9.3.1.2): the SOP class and instance, when read.
        AffectedSOPClassUID: elements?.AffectedSOPClassUID,
        AffectedSOPInstanceUID: elements?.AffectedSOPInstanceUID,
        CommandField: (commandField | RESPONSE_BIT) & 0xffff,
        MessageIDBeingRespondedTo: messageId,
        CommandDataSetType: NO_DATASET,
        Status: status,
        ErrorComment: why.slice(0, 64),
      },
    };
    if (datasetFollows) this.state = { kind: 'discard', contextId, refusal };
    else this.answer(refusal);
  }

  private answer(refusal: Refusal): void {
    this.events.refused(refusal.why, refusal.status, refusal.commandField);
    if (!sendCommandElements(this.network, refusal.elements, refusal.contextId))
      this.abort(`${refusal.why}, and no response could be formed`);
  }

  private startStore(
    contextId: number,
    context: PresentationContext,
    elements: Record<string, unknown>,
  ): void {
    const request = libraryRequest(STORE_REQUEST, elements);
    if (dimseLog.getLevel() <= dimseLog.levels.INFO) {
      const described = request.toString({
        includeCommandDataset: this.network.logCommandDatasets,
        includeDataset: this.network.logDatasets,
      });
      dimseLog.info(`${this.network.logId} <- ${described} [pc: ${contextId}]`);
    }
    this.state = {
      kind: 'store',
      contextId,
      context,
      request,
      pending: new PieceCoalescer(),
      stream: undefined,
    };
  }

  /** Writes what the store state gathered from this PDU: one corked batch, so one `_writev`. */
  private flush(state: Extract<State, { kind: 'store' }>): void {
    if (state.pending.pendingBytes === 0) return;
    const stream = this.streamOf(state);
    stream.cork();
    let room = true;
    for (const piece of state.pending.drain()) room = stream.write(piece);
    stream.uncork();
    if (!room) this.pauseUntilWritten(stream);
  }

  private finishStore(state: Extract<State, { kind: 'store' }>): void {
    this.flush(state);
    this.state = IDLE;
    const { context, request } = state;
    const stream = this.streamOf(state);
    stream.end();
    this.network.createDatasetFromStoreWritableStream(stream, context, (dataset) => {
      request.setDataset(dataset);
      this.network._performDimse(context, request);
    });
  }

  private streamOf(state: Extract<State, { kind: 'store' }>): Writable {
    state.stream ??= this.network.createStoreWritableStream(state.context, state.request);
    return state.stream;
  }

  /**
   * Stops reading the socket while the store stream holds more than its high-water mark (the library
   * ignores this signal), until it drains or, once ended or failed, closes.
   */
  private pauseUntilWritten(stream: Writable): void {
    const { socket } = this.network;
    socket.pause();
    const resume = (): void => {
      stream.off('drain', resume);
      stream.off('close', resume);
      socket.resume();
    };
    stream.on('drain', resume);
    stream.on('close', resume);
  }

  private abort(why: string): void {
    const state = this.state;
    this.state = { kind: 'aborted' };
    if (state.kind === 'store') state.pending.clear();
    this.events.abort(why);
  }
}

/** Longest UID (PS3.5 6.2, VR UI). */
export const MAX_UID_LENGTH = 64;

/**
 * Why a C-STORE-RQ is refused before its dataset is even stored, if it is: no dataset, or its SOP class or
 * instance UID missing or longer than a UID can be (the dataset's must equal them; the spool file's
 * prefix and the tar member name are made from them).
 */
function storeRequestProblem(
  elements: Record<string, unknown>,
  datasetFollows: boolean,
): { status: number; why: string } | undefined {
  if (!datasetFollows) return { status: StoreStatus.CannotUnderstand, why: 'C-STORE-RQ without a dataset' };
  const sopClass = elements.AffectedSOPClassUID;
  const sopInstance = elements.AffectedSOPInstanceUID;
  if (typeof sopClass !== 'string' || typeof sopInstance !== 'string')
    return { status: StoreStatus.CannotUnderstand, why: 'C-STORE-RQ without SOP class or instance UID' };
  if (sopInstance.length > MAX_UID_LENGTH)
    return {
      status: StoreStatus.DataSetDoesNotMatchSopClass,
      why: `SOP Instance UID longer than ${MAX_UID_LENGTH} characters`,
    };
  if (sopClass.length > MAX_UID_LENGTH)
    return {
      status: StoreStatus.DataSetDoesNotMatchSopClass,
      why: `SOP Class UID longer than ${MAX_UID_LENGTH} characters`,
    };
  return undefined;
}

/**
 * The request object the library builds for a command set: `Object.assign(new XRequest(), new
 * Command(new Dataset(bytes)))`, i.e. a default request whose command dataset is the parsed one. (The
 * type declarations want constructor arguments; the library itself calls them without.)
 */
function libraryRequest<T extends CStoreRequest | CEchoRequest>(
  kind: RequestClass<T>,
  elements: Record<string, unknown>,
): T {
  const request = new kind();
  request.setCommandDataset(new Dataset(elements));
  return request;
}

type RequestClass<T> = new () => T;
const STORE_REQUEST = CStoreRequestClass as unknown as RequestClass<CStoreRequest>;
const ECHO_REQUEST = CEchoRequestClass as unknown as RequestClass<CEchoRequest>;

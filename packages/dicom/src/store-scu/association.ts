import { once } from 'node:events';
import { open } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION } from '../part10.js';
import { decodeCStoreRsp, encodeCStoreRq, type CStoreResponse } from './command.js';
import type { InstanceFile } from './instance-file.js';
import {
  decodeAssociateAc,
  decodeAssociateRj,
  decodePdvs,
  encodeAbort,
  encodeAssociateRq,
  encodeReleaseRq,
  pDataHeader,
  PduReader,
  PduType,
  type AssociateAccept,
  type Pdu,
  type ProposedContext,
} from './pdu.js';

/** Our max PDU: large, so responses never fragment and peers may send in big PDUs. */
const OUR_MAX_PDU = 1024 * 1024;
/** Largest PDV we write even when the peer accepts anything: bounds memory per write. */
const MAX_PDV_VALUE = 1024 * 1024;

/** How the association or a store ended without success. */
export type StoreScuErrorCode =
  /** No TCP connection (refused, unreachable, DNS). */
  | 'connect'
  /** No answer in time (association, C-STORE response, release). */
  | 'timeout'
  /** The association was rejected: permanent or transient as the peer said. */
  | 'rejected'
  /** The peer aborted, or closed the connection in the middle. */
  | 'aborted';

/** A failure of the association as a whole; `transient` says whether trying again later may succeed. */
export class StoreScuError extends Error {
  override readonly name = 'StoreScuError';
  constructor(
    readonly code: StoreScuErrorCode,
    readonly transient: boolean,
    message: string,
    readonly reject?: { result: number; source: number; reason: number },
  ) {
    super(message);
  }
}

export interface OpenAssociationOptions {
  host: string;
  port: number;
  callingAeTitle: string;
  calledAeTitle: string;
  contexts: readonly ProposedContext[];
  /** Connect, association, response and release timeout in ms. */
  timeoutMs: number;
}

const REJECT_REASONS: Record<string, string> = {
  '1:1': 'no reason given',
  '1:2': 'application context name not supported',
  '1:3': 'calling AE title not recognised',
  '1:7': 'called AE title not recognised',
  '2:1': 'no reason given',
  '2:2': 'protocol version not supported',
  '3:1': 'temporary congestion',
  '3:2': 'local limit exceeded',
};

function rejectText(rj: { result: number; source: number; reason: number }): string {
  const kind = rj.result === 1 ? 'permanently' : 'transiently';
  const why = REJECT_REASONS[`${rj.source}:${rj.reason}`] ?? `source ${rj.source}, reason ${rj.reason}`;
  return `association rejected ${kind}: ${why}`;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: StoreScuError): void;
}

/**
 * One association of a C-STORE SCU. Datasets are sent exactly as they are in their files (never parsed or
 * re-encoded), streamed in PDUs as large as the peer accepts, on a socket with TCP_NODELAY so the last
 * PDU of a request never waits for an ACK (Nagle).
 */
export class StoreAssociation {
  readonly #socket: Socket;
  readonly #accept: AssociateAccept;
  readonly #contexts: readonly ProposedContext[];
  readonly #timeoutMs: number;
  readonly #maxValue: number;
  #messageId = 0;
  #pending: (Waiter<CStoreResponse> & { messageId: number }) | undefined;
  #releasing: Waiter<void> | undefined;
  #failure: StoreScuError | undefined;
  #command: Buffer[] = [];

  private constructor(socket: Socket, accept: AssociateAccept, opts: OpenAssociationOptions) {
    this.#socket = socket;
    this.#accept = accept;
    this.#contexts = opts.contexts;
    this.#timeoutMs = opts.timeoutMs;
    this.#maxValue = Math.max(1024, Math.min(MAX_PDV_VALUE, accept.peerMaxPdu - 6));
  }

  /** Connects and negotiates; rejects with a {@link StoreScuError} (transient or not). */
  static async open(opts: OpenAssociationOptions): Promise<StoreAssociation> {
    const socket = connect({ host: opts.host, port: opts.port, noDelay: true });
    socket.setNoDelay(true);
    const reader = new PduReader();
    try {
      const first = await new Promise<Pdu>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new StoreScuError('timeout', true, `no association answer in ${opts.timeoutMs} ms`));
        }, opts.timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          socket.off('data', onData);
          socket.off('error', onError);
          socket.off('close', onClose);
        };
        const onData = (chunk: Buffer): void => {
          const [pdu] = reader.push(chunk);
          if (pdu === undefined) return;
          done();
          resolve(pdu);
        };
        const onError = (err: NodeJS.ErrnoException): void => {
          done();
          const connecting =
            socket.connecting ||
            ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(
              err.code ?? '',
            );
          reject(
            new StoreScuError(
              connecting ? 'connect' : 'aborted',
              true,
              `${opts.host}:${opts.port}: ${err.message}`,
            ),
          );
        };
        const onClose = (): void => {
          done();
          reject(new StoreScuError('aborted', true, 'connection closed during association negotiation'));
        };
        socket.on('data', onData);
        socket.once('error', onError);
        socket.once('close', onClose);
        socket.once('connect', () => {
          socket.write(
            encodeAssociateRq({
              callingAeTitle: opts.callingAeTitle,
              calledAeTitle: opts.calledAeTitle,
              contexts: opts.contexts,
              maxPdu: OUR_MAX_PDU,
              implementationClassUid: IMPLEMENTATION_CLASS_UID,
              implementationVersion: IMPLEMENTATION_VERSION,
            }),
          );
        });
      });
      switch (first.type) {
        case PduType.AssociateAc: {
          const association = new StoreAssociation(socket, decodeAssociateAc(first.body), opts);
          association.#listen(reader);
          return association;
        }
        case PduType.AssociateRj: {
          const rj = decodeAssociateRj(first.body);
          throw new StoreScuError('rejected', rj.result !== 1, rejectText(rj), rj);
        }
        case PduType.Abort:
          throw new StoreScuError('aborted', true, 'association aborted by the peer during negotiation');
        default:
          throw new StoreScuError('aborted', true, `unexpected PDU type ${first.type} during negotiation`);
      }
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /**
   * The accepted context for a SOP class whose transfer syntax is one of `syntaxes` (in order of
   * preference), with the transfer syntax the peer chose; undefined when none was accepted.
   */
  contextFor(
    sopClassUid: string,
    syntaxes: readonly string[],
  ): { id: number; transferSyntaxUid: string } | undefined {
    for (const syntax of syntaxes) {
      for (const context of this.#contexts) {
        if (context.abstractSyntax !== sopClassUid) continue;
        const chosen = this.#accept.accepted.get(context.id);
        if (chosen === syntax) return { id: context.id, transferSyntaxUid: chosen };
      }
    }
    return undefined;
  }

  /**
   * Sends one instance on context `contextId` (whose transfer syntax must be the file's) and resolves with
   * the C-STORE response; rejects with a {@link StoreScuError} when the association fails meanwhile.
   */
  async store(instance: InstanceFile, contextId: number): Promise<CStoreResponse> {
    if (this.#failure) throw this.#failure;
    this.#messageId = (this.#messageId % 0xffff) + 1;
    const messageId = this.#messageId;
    const response = this.#awaitResponse(messageId);
    response.catch(() => undefined);
    const command = encodeCStoreRq({
      messageId,
      sopClassUid: instance.sopClassUid,
      sopInstanceUid: instance.sopInstanceUid,
    });
    try {
      this.#socket.cork();
      this.#socket.write(pDataHeader(contextId, command.length, true, true));
      this.#socket.write(command);
      await this.#writeDataset(instance, contextId);
    } catch (err) {
      if (err instanceof StoreScuError) this.#fail(err);
      else this.#fail(new StoreScuError('aborted', true, `sending failed: ${(err as Error).message}`));
    }
    return response;
  }

  /** A-RELEASE; falls back to closing the connection when the peer does not answer in time. */
  async release(): Promise<void> {
    if (this.#failure) {
      this.#socket.destroy();
      return;
    }
    const released = new Promise<void>((resolve, reject) => {
      this.#releasing = { resolve, reject };
    });
    const timer = setTimeout(() => {
      this.#fail(new StoreScuError('timeout', true, 'no release answer'));
    }, this.#timeoutMs);
    this.#socket.write(encodeReleaseRq());
    try {
      await released;
    } catch {
      // Everything was acknowledged already; a peer that does not answer the release loses nothing.
    } finally {
      clearTimeout(timer);
      this.#socket.destroy();
    }
  }

  /** A-ABORT and close. */
  abort(): void {
    if (!this.#socket.destroyed) this.#socket.end(encodeAbort());
    this.#fail(new StoreScuError('aborted', true, 'aborted by us'));
    this.#socket.destroy();
  }

  async #writeDataset(instance: InstanceFile, contextId: number): Promise<void> {
    const handle = await open(instance.path, 'r');
    try {
      let position = instance.datasetOffset;
      let remaining = instance.size - instance.datasetOffset;
      if (remaining === 0) {
        this.#socket.write(pDataHeader(contextId, 0, false, true));
      }
      while (remaining > 0) {
        const length = Math.min(this.#maxValue, remaining);
        const chunk = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(chunk, 0, length, position);
        if (bytesRead !== length) throw new Error(`${instance.path} changed while being sent`);
        if (this.#failure) throw this.#failure;
        position += length;
        remaining -= length;
        this.#socket.write(pDataHeader(contextId, length, false, remaining === 0));
        const flushed = this.#socket.write(chunk);
        // Uncork per PDU: the corked header and value leave in one writev; the next read overlaps sending.
        this.#socket.uncork();
        if (!flushed && remaining > 0) await this.#drained();
        if (remaining > 0) this.#socket.cork();
      }
    } finally {
      this.#socket.uncork();
      await handle.close();
    }
  }

  async #drained(): Promise<void> {
    const failed = new Promise<never>((_, reject) => {
      this.#socket.once('close', () => {
        reject(this.#failure ?? new StoreScuError('aborted', true, 'connection closed while sending'));
      });
    });
    failed.catch(() => undefined);
    await Promise.race([once(this.#socket, 'drain'), failed]);
  }

  #awaitResponse(messageId: number): Promise<CStoreResponse> {
    return new Promise<CStoreResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new StoreScuError('timeout', true, `no C-STORE response in ${this.#timeoutMs} ms`));
        this.#socket.destroy();
      }, this.#timeoutMs);
      this.#pending = {
        messageId,
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  #listen(reader: PduReader): void {
    this.#socket.on('data', (chunk: Buffer) => {
      for (const pdu of reader.push(chunk)) this.#onPdu(pdu);
    });
    this.#socket.on('error', (err) => {
      this.#fail(new StoreScuError('aborted', true, `connection failed: ${err.message}`));
    });
    this.#socket.on('close', () => {
      this.#fail(new StoreScuError('aborted', true, 'connection closed by the peer'));
    });
  }

  #onPdu(pdu: Pdu): void {
    switch (pdu.type) {
      case PduType.PData:
        for (const pdv of decodePdvs(pdu.body)) {
          if (!pdv.command) continue;
          this.#command.push(pdv.value);
          if (!pdv.last) continue;
          const response = decodeCStoreRsp(Buffer.concat(this.#command));
          this.#command = [];
          const pending = this.#pending;
          if (response && pending && response.messageIdBeingRespondedTo === pending.messageId) {
            this.#pending = undefined;
            pending.resolve(response);
          }
        }
        return;
      case PduType.ReleaseRp: {
        const releasing = this.#releasing;
        this.#releasing = undefined;
        releasing?.resolve();
        return;
      }
      case PduType.Abort:
        this.#fail(new StoreScuError('aborted', true, 'association aborted by the peer'));
        this.#socket.destroy();
        return;
      default:
        this.#fail(new StoreScuError('aborted', true, `unexpected PDU type ${pdu.type}`));
        this.#socket.destroy();
    }
  }

  #fail(error: StoreScuError): void {
    this.#failure ??= error;
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(this.#failure);
    const releasing = this.#releasing;
    this.#releasing = undefined;
    releasing?.reject(this.#failure);
  }
}

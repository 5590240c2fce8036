import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION } from '../part10.js';
import { decodeCStoreRsp, encodeCStoreRq, type CStoreResponse } from './command.js';
import { BlockBuffers, READ_BLOCK, type Block } from './block-buffers.js';
import { rejectText, StoreScuError } from './errors.js';
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
/** Largest PDV we write even when the peer accepts anything. */
const MAX_PDV_VALUE = 1024 * 1024;

export interface OpenAssociationOptions {
  host: string;
  port: number;
  callingAeTitle: string;
  calledAeTitle: string;
  contexts: readonly ProposedContext[];
  /** Connect, association, response and release timeout in ms. */
  timeoutMs: number;
  /**
   * Called with the socket as soon as it exists, for socket options this package cannot set itself (the
   * sender turns on TCP_QUICKACK, so a destination that leaves Nagle on never waits for our ACKs).
   */
  onSocket?: (socket: Socket) => void;
  /**
   * DICOM TLS when present: options for `tls.connect` (CA, client certificate and key, servername). The
   * peer's certificate is always verified; TLS 1.2 is the least accepted (BCP 195).
   */
  tls?: Pick<ConnectionOptions, 'ca' | 'cert' | 'key' | 'servername'>;
}

/**
 * Node's error codes of certificate checks that failed: another try will not fix them (the certificate is
 * what it is). Shared by every TLS client of the suite (DICOM here, DICOMweb in the sender).
 */
export const CERTIFICATE_ERROR_CODES: ReadonlySet<string> = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A plain TCP connection, or a TLS one (verified, TLS 1.2+) when `opts.tls` is set. */
function connectTo(opts: OpenAssociationOptions): { socket: Socket; ready: 'connect' | 'secureConnect' } {
  if (opts.tls === undefined) {
    return { socket: connect({ host: opts.host, port: opts.port, noDelay: true }), ready: 'connect' };
  }
  const socket = connectTls({
    host: opts.host,
    port: opts.port,
    ...opts.tls,
    minVersion: 'TLSv1.2',
    rejectUnauthorized: true,
  });
  return { socket, ready: 'secureConnect' };
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
  #prefetched: { path: string; position: number; block: Promise<Block> } | undefined;
  readonly #buffers = new BlockBuffers();
  #releasing: Waiter<void> | undefined;
  #failure: StoreScuError | undefined;
  #command: Buffer[] = [];

  private constructor(socket: Socket, accept: AssociateAccept, opts: OpenAssociationOptions) {
    this.#socket = socket;
    this.#accept = accept;
    this.#contexts = opts.contexts;
    this.#timeoutMs = opts.timeoutMs;
    this.#maxValue = Math.max(16, Math.min(MAX_PDV_VALUE, accept.peerMaxPdu - 6));
  }

  /** Connects and negotiates; rejects with a {@link StoreScuError} (transient or not). */
  static async open(opts: OpenAssociationOptions): Promise<StoreAssociation> {
    const { socket, ready } = connectTo(opts);
    socket.setNoDelay(true);
    opts.onSocket?.(socket);
    // Errors are handled by the listeners below; this one only keeps a late error (after a rejection was
    // handled and the socket destroyed) from becoming an uncaught exception.
    socket.on('error', () => undefined);
    const reader = new PduReader();
    try {
      let secured = false;
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
          // Before the handshake completed, a TLS failure (certificate not trusted, no client certificate,
          // not TLS at all) is named as one.
          const tls = opts.tls !== undefined && !connecting && !secured;
          if (tls && CERTIFICATE_ERROR_CODES.has(err.code ?? '')) {
            reject(
              new StoreScuError(
                'connect',
                false,
                `${opts.host}:${opts.port}: TLS: the node's certificate is not trusted: ${err.message}`,
              ),
            );
            return;
          }
          reject(
            new StoreScuError(
              connecting ? 'connect' : 'aborted',
              true,
              `${opts.host}:${opts.port}: ${tls ? 'TLS handshake failed: ' : ''}${err.message}`,
            ),
          );
        };
        const onClose = (): void => {
          done();
          const during = opts.tls !== undefined && !secured ? 'the TLS handshake' : 'association negotiation';
          reject(new StoreScuError('aborted', true, `connection closed during ${during}`));
        };
        socket.on('data', onData);
        socket.once('error', onError);
        socket.once('close', onClose);
        socket.once(ready, () => {
          secured = true;
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
  async store(instance: InstanceFile, contextId: number, next?: InstanceFile): Promise<CStoreResponse> {
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
      await this.#writeRequest(instance, contextId, command);
      if (next) this.#prefetch(next);
    } catch (err) {
      // A request cut short leaves the association unusable: abort it; what is left goes again later.
      this.#fail(
        err instanceof StoreScuError
          ? err
          : new StoreScuError('aborted', true, `sending failed: ${(err as Error).message}`),
      );
      this.abort();
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

  /**
   * Writes the command PDU, then the dataset in PDVs as large as the peer takes. The file is read in
   * blocks of {@link READ_BLOCK}; each block goes out in one corked write, and reading the next block
   * overlaps sending this one.
   */
  async #writeRequest(instance: InstanceFile, contextId: number, command: Buffer): Promise<void> {
    let position = instance.datasetOffset;
    let remaining = instance.size - instance.datasetOffset;
    const prefetched = this.#prefetched;
    this.#prefetched = undefined;
    let block: Block | undefined;
    if (prefetched && prefetched.path === instance.path && prefetched.position === position)
      block = await prefetched.block;
    else if (prefetched) {
      // Not the instance it was read for (that one was skipped): let the read finish before its buffer
      // is reused.
      const unused = await prefetched.block.catch(() => undefined);
      unused?.release(Promise.resolve());
    }
    let fd: number | undefined;
    try {
      if (remaining === 0) {
        this.#socket.cork();
        this.#socket.write(pDataHeader(contextId, command.length, true, true));
        this.#socket.write(command);
        this.#socket.write(pDataHeader(contextId, 0, false, true));
        this.#socket.uncork();
      }
      let first = true;
      while (remaining > 0) {
        if (!block) {
          fd ??= openSync(instance.path, 'r');
          block = await this.#buffers.read(fd, position, remaining);
        }
        const bytes = block.bytes;
        if (bytes.length === 0 || this.#failure) {
          block.release(Promise.resolve());
          throw this.#failure ?? new Error(`${instance.path} changed while being sent`);
        }
        let flushed = true;
        let written: Promise<void> = Promise.resolve();
        this.#socket.cork();
        if (first) {
          this.#socket.write(pDataHeader(contextId, command.length, true, true));
          this.#socket.write(command);
          first = false;
        }
        for (let at = 0; at < bytes.length; at += this.#maxValue) {
          const piece = bytes.subarray(at, Math.min(at + this.#maxValue, bytes.length));
          remaining -= piece.length;
          this.#socket.write(pDataHeader(contextId, piece.length, false, remaining === 0));
          if (at + this.#maxValue >= bytes.length) {
            // Writes complete in order: the last piece's callback frees the whole buffer.
            written = new Promise<void>((resolve) => {
              flushed = this.#socket.write(piece, () => {
                resolve();
              });
            });
          } else flushed = this.#socket.write(piece);
        }
        this.#socket.uncork();
        block.release(written);
        position += bytes.length;
        block = undefined;
        if (!flushed && remaining > 0) await this.#drained();
      }
    } finally {
      block?.release(Promise.resolve());
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Starts reading the first block of the instance to send next, while this one's response is awaited. */
  #prefetch(instance: InstanceFile): void {
    const length = Math.min(READ_BLOCK, instance.size - instance.datasetOffset);
    if (length <= 0) return;
    const block = (async () => {
      const fd = openSync(instance.path, 'r');
      try {
        return await this.#buffers.read(fd, instance.datasetOffset, length);
      } finally {
        closeSync(fd);
      }
    })();
    block.catch(() => undefined);
    this.#prefetched = { path: instance.path, position: instance.datasetOffset, block };
  }

  async #drained(): Promise<void> {
    let onClose: (() => void) | undefined;
    const closed = new Promise<never>((_, reject) => {
      onClose = () => {
        reject(this.#failure ?? new StoreScuError('aborted', true, 'connection closed while sending'));
      };
      this.#socket.once('close', onClose);
    });
    closed.catch(() => undefined);
    try {
      await Promise.race([once(this.#socket, 'drain'), closed]);
    } finally {
      if (onClose) this.#socket.off('close', onClose);
    }
  }

  #awaitResponse(messageId: number): Promise<CStoreResponse> {
    return new Promise<CStoreResponse>((resolve, reject) => {
      this.#pending = { messageId, resolve, reject };
    });
  }

  #listen(reader: PduReader): void {
    // No traffic either way for the timeout (a stalled write, or no response): the association is dead.
    // Reading and writing both reset it, so a large instance on a slow link never times out while it flows.
    this.#socket.setTimeout(this.#timeoutMs, () => {
      this.#fail(new StoreScuError('timeout', true, `no traffic from the peer for ${this.#timeoutMs} ms`));
      this.#socket.destroy();
    });
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

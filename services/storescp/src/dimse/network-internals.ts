import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import {
  Scp,
  type CEchoRequest,
  type CStoreRequest,
  type CStoreResponseType,
  type DatasetType,
  type PresentationContext,
} from './dimse.js';

/** A DIMSE request or response as the library's sending path sees it. */
export type DimseMessage = Pick<CStoreResponseType, 'getDataset' | 'getCommandDataset' | 'toString'>;

/**
 * The members of dcmjs-dimse 0.3.3's `Network` (the base of `Scp`) that our socket wiring reads and
 * writes. They are internal to the library (not in its type declarations), so this view must be checked
 * against the bundle whenever the library is upgraded; the names are those of the unminified source.
 */
export interface NetworkInternals {
  readonly socket: Socket;
  readonly connectTimeout: number;
  readonly associationTimeout: number;
  readonly pduTimeout: number;
  /** Prefix of the library's log lines (the peer's AE title once associated). */
  readonly logId: string;
  readonly logCommandDatasets: boolean;
  readonly logDatasets: boolean;
  connected: boolean;
  connectedTime: number | undefined;
  lastPduTime: number | undefined;
  timeoutIntervalId: NodeJS.Timeout | undefined;
  readonly statistics: { addBytesReceived(bytes: number): void; addBytesSent(bytes: number): void };
  emit(event: string, arg?: unknown): boolean;
  sendAbort(): void;
  createStoreWritableStream(context: PresentationContext, request: CStoreRequest): Writable;
  createDatasetFromStoreWritableStream(
    writable: Writable,
    context: PresentationContext,
    callback: (dataset: DatasetType) => void,
  ): void;
  /** Clears the connection state and stops the association/PDU timeout timer. */
  _reset(): void;
  /** Parses one whole PDU (header included) and acts on it. Never rejects: it reports via 'networkError'. */
  _processPdu(pdu: Buffer): Promise<void>;
  /** Hands a complete request to its handler (emits 'cStoreRequest', 'cEchoRequest', ...). */
  _performDimse(context: PresentationContext, command: CStoreRequest | CEchoRequest): void;
  /** Sends a request or response (command set, then dataset if any) in P-DATA-TF PDUs. */
  _sendPDataTF(message: DimseMessage, contextId: number, maxPduLength: number): void;
}

/** The library's internals of `network` (an `Scp` or another `Network`). */
export function internalsOf(network: object): NetworkInternals {
  return network as NetworkInternals;
}

/** The library's own implementations of the internals we override, for falling back to them. */
export const libraryNetwork = Scp.prototype as unknown as Pick<NetworkInternals, '_sendPDataTF'>;

import { dimseLog, Implementation } from './dimse.js';
import type { NetworkInternals } from './network-internals.js';
import {
  joinPdu,
  pduLengthLimit,
  PduFramer,
  PduTooLongError,
  type FramedPdu,
  type FramingError,
} from './pdu-framer.js';
import { AbortReason, abortPdu } from './upper-layer-pdus.js';

/** How the owner of the association takes part in framing. */
export interface PduHooks {
  /** Sees every PDU first; returns true when it handled it, else the library parses it. */
  readonly takePdu?: (pdu: FramedPdu) => boolean;
  /** Longest PDU accepted now, header included, asked at each PDU header; default {@link pduLengthLimit}. */
  readonly lengthLimit?: () => number;
  /**
   * The stream cannot be framed (a PDU longer than allowed, an unknown PDU type): answer it (an
   * A-ASSOCIATE-RJ, an A-ABORT) and close. Without this hook an A-ABORT is sent for a PDU too long.
   * Either way the library is then told of the error ('networkError').
   */
  readonly refuseUnframeable?: (error: FramingError) => void;
  /**
   * The connection stayed silent past its timeout and is about to be closed: the owner may tell the peer
   * (an A-ABORT once associated) and returns true when it did. Either way the library is then told of the
   * error ('networkError').
   */
  readonly timedOut?: () => boolean;
}

/** How often the association and PDU timeouts are checked (the library's period). */
const TIMEOUT_CHECK_MS = 1000;

/**
 * Does what dcmjs-dimse 0.3.3's `Network#_wrapSocket` does: the same socket timeout and listeners, the
 * same `_reset()` calls, log lines and events ('connect', 'networkError', 'close'), the same association
 * and PDU timeout check, the same statistics; only PDUs are framed by our {@link PduFramer} instead of the
 * library's accumulator, which copied every chunk onto the partial PDU. A PDU that lies in one chunk
 * reaches the library as a slice of it, otherwise as one exact-size copy.
 *
 * `hooks` let the caller take PDUs itself and bound their length by the association's state.
 *
 * Runs inside the library's constructor, so it keeps its state in this closure, not on the instance.
 */
export function wireSocket(network: NetworkInternals, hooks: PduHooks = {}): void {
  const { takePdu, refuseUnframeable, timedOut } = hooks;
  const { socket } = network;
  const fail = (message: string): void => {
    network._reset();
    const text = `${network.logId} -> ${message}`;
    dimseLog.error(text);
    network.emit('networkError', new Error(text));
  };

  socket.setTimeout(network.connectTimeout);
  socket.on('connect', () => {
    network.connected = true;
    network.connectedTime = Date.now();
    network.emit('connect');
  });
  const framer = new PduFramer(
    (pdu) => {
      network.lastPduTime = Date.now();
      if (takePdu?.(pdu)) return;
      void network._processPdu(joinPdu(pdu));
    },
    (error) => {
      // The peer hears why (A-ABORT, or whatever the hook answers) before the connection closes; without
      // a hook, an unknown PDU type gets no answer.
      if (refuseUnframeable) refuseUnframeable(error);
      else if (error instanceof PduTooLongError) socket.end(abortPdu(AbortReason.InvalidPduParameterValue));
      fail(`Connection error: ${error.message}`);
    },
    hooks.lengthLimit ?? pduLengthLimit(Implementation.getMaxPduLength()),
  );
  socket.on('data', (chunk: Buffer) => {
    framer.push(chunk);
    network.statistics.addBytesReceived(chunk.length);
  });
  socket.on('error', (error) => {
    fail(`Connection error: ${error.message}`);
  });
  socket.on('timeout', () => {
    timedOut?.();
    fail('Connection timeout');
  });
  socket.on('close', () => {
    network._reset();
    dimseLog.info(`${network.logId} -> Connection closed`);
    network.emit('close');
  });
  network.timeoutIntervalId = setInterval(() => {
    checkTimeouts(network, timedOut);
  }, TIMEOUT_CHECK_MS);
}

/** Aborts an association that stayed silent too long after connecting or since its last PDU. */
function checkTimeouts(network: NetworkInternals, timedOut: (() => boolean) | undefined): void {
  if (!network.connected) return;
  const now = Date.now();
  let message: string | undefined;
  if (network.lastPduTime === undefined) {
    if (network.connectedTime !== undefined && now - network.connectedTime >= network.associationTimeout)
      message = `${network.logId} -> Exceeded association timeout (${network.associationTimeout}), closing connection...`;
  } else if (now - network.lastPduTime >= network.pduTimeout) {
    message = `${network.logId} -> Exceeded PDU timeout (${network.pduTimeout}), closing connection...`;
  }
  if (message === undefined) return;
  if (timedOut?.() !== true) network.sendAbort();
  network._reset();
  dimseLog.error(message);
  network.emit('networkError', new Error(`Connection timeout: ${message}`));
}

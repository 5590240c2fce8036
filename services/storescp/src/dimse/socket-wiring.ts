import { dimseLog, Implementation } from './dimse.js';
import type { NetworkInternals } from './network-internals.js';
import { joinPdu, pduLengthLimit, PduFramer, PduTooLongError, type FramedPdu } from './pdu-framer.js';

/**
 * A-ABORT PDU (PS3.8 9.3.8): source 2 (service provider), reason 6 (invalid PDU parameter value). Written
 * straight to the socket: the library's sendAbort needs an association, and there may be none yet.
 */
const A_ABORT_INVALID_PDU_PARAMETER = Buffer.from([
  0x07, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x02, 0x06,
]);

/** How often the association and PDU timeouts are checked (the library's period). */
const TIMEOUT_CHECK_MS = 1000;

/**
 * Does what dcmjs-dimse 0.3.3's `Network#_wrapSocket` does: the same socket timeout and listeners, the
 * same `_reset()` calls, log lines and events ('connect', 'networkError', 'close'), the same association
 * and PDU timeout check, the same statistics; only PDUs are framed by our {@link PduFramer} instead of the
 * library's accumulator, which copied every chunk onto the partial PDU. A PDU that lies in one chunk
 * reaches the library as a slice of it, otherwise as one exact-size copy.
 *
 * `takePdu`, when given, sees every PDU first and returns true when it handled it itself.
 *
 * Runs inside the library's constructor, so it keeps its state in this closure, not on the instance.
 */
export function wireSocket(network: NetworkInternals, takePdu?: (pdu: FramedPdu) => boolean): void {
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
      // A PDU beyond what we announced is a protocol violation the peer hears about (A-ABORT) before the
      // connection closes; an unknown PDU type leaves nothing to answer.
      if (error instanceof PduTooLongError) socket.end(A_ABORT_INVALID_PDU_PARAMETER);
      fail(`Connection error: ${error.message}`);
    },
    pduLengthLimit(Implementation.getMaxPduLength()),
  );
  socket.on('data', (chunk: Buffer) => {
    framer.push(chunk);
    network.statistics.addBytesReceived(chunk.length);
  });
  socket.on('error', (error) => {
    fail(`Connection error: ${error.message}`);
  });
  socket.on('timeout', () => {
    fail('Connection timeout');
  });
  socket.on('close', () => {
    network._reset();
    dimseLog.info(`${network.logId} -> Connection closed`);
    network.emit('close');
  });
  network.timeoutIntervalId = setInterval(() => {
    checkTimeouts(network);
  }, TIMEOUT_CHECK_MS);
}

/** Aborts an association that stayed silent too long after connecting or since its last PDU. */
function checkTimeouts(network: NetworkInternals): void {
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
  network.sendAbort();
  network._reset();
  dimseLog.error(message);
  network.emit('networkError', new Error(`Connection timeout: ${message}`));
}

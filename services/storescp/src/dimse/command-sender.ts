import { encodeCommandSet } from './command-set.js';
import { dimseLog, P_DATA_TF } from './dimse.js';
import type { DimseMessage, NetworkInternals } from './network-internals.js';

/** Message control header of a PDV holding a whole command set: command (bit 0) and last (bit 1). */
const COMMAND_LAST_FRAGMENT = 0x03;

/**
 * Sends a DIMSE message without a dataset (every response this receiver gives: C-STORE-RSP, C-ECHO-RSP)
 * as the library's `Network#_sendPDataTF` would: one P-DATA-TF PDU with one PDV carrying the whole
 * command set, the same log line (built only when the library's log would print it) and statistics.
 * The command set is encoded by {@link encodeCommandSet} instead of dcmjs, which costs two zero-filled
 * 256 KiB buffers per message: per C-STORE, as much garbage as the dataset itself.
 *
 * Returns false, having sent nothing, for a message with a dataset or with a command element the encoder
 * does not handle; the caller then uses the library's own path.
 */
export function sendCommandWithoutDataset(
  network: NetworkInternals,
  message: DimseMessage,
  contextId: number,
): boolean {
  if (message.getDataset()) return false;
  const commandSet = encodeCommandSet(message.getCommandDataset().getElements());
  if (!commandSet) return false;
  if (dimseLog.getLevel() <= dimseLog.levels.INFO) {
    const described = message.toString({
      includeCommandDataset: network.logCommandDatasets,
      includeDataset: network.logDatasets,
    });
    dimseLog.info(`${network.logId} -> ${described} [pc: ${contextId}]`);
  }
  writeCommandSet(network, commandSet, contextId);
  return true;
}

/**
 * Sends a command without dataset given as its elements (keyword to value, as {@link encodeCommandSet}
 * takes them): the responses the receiver forms itself, for requests it does not serve or cannot read.
 * Returns false, having sent nothing, when an element cannot be encoded.
 */
export function sendCommandElements(
  network: NetworkInternals,
  elements: Readonly<Record<string, unknown>>,
  contextId: number,
): boolean {
  const commandSet = encodeCommandSet(elements);
  if (!commandSet) return false;
  writeCommandSet(network, commandSet, contextId);
  return true;
}

/** One P-DATA-TF PDU with one PDV carrying the whole command set. */
function writeCommandSet(network: NetworkInternals, commandSet: Buffer, contextId: number): void {
  const pdu = Buffer.alloc(12 + commandSet.length);
  pdu.writeUInt8(P_DATA_TF, 0);
  pdu.writeUInt32BE(6 + commandSet.length, 2); // the PDV: length field, context id, control header, value
  pdu.writeUInt32BE(2 + commandSet.length, 6);
  pdu.writeUInt8(contextId, 10);
  pdu.writeUInt8(COMMAND_LAST_FRAGMENT, 11);
  commandSet.copy(pdu, 12);
  network.socket.write(pdu);
  network.statistics.addBytesSent(pdu.length);
}

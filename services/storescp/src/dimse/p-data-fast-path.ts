import type { Writable } from 'node:stream';
import { C_STORE_RQ, dimseLog, P_DATA_TF, type PresentationContext } from './dimse.js';
import type { NetworkInternals } from './network-internals.js';
import type { FramedPdu } from './pdu-framer.js';
import { splitPdvs, type Pdv } from './pdv-split.js';

/**
 * Writes the dataset fragments of the C-STORE being received straight into its store stream, as slices
 * of the received chunks. This is what the library's `Network#_processPDataTf` does for them, minus its
 * parse into RawPdu/PDataTF objects and the copy of every PDU it needs for that: the bulk of a C-STORE is
 * these fragments, so they are where per-byte work and garbage come from.
 *
 * Takes a PDU only when it is a P-DATA-TF made of well-formed dataset PDVs of known presentation
 * contexts, received after a C-STORE-RQ command whose dataset is not complete yet, with at most its last
 * PDV the dataset's last fragment. Everything else (commands, PDUs mixing a command and data, other
 * commands' datasets, malformed or unexpected PDVs) returns false and goes through the library, which
 * keeps its own state in the same fields this updates.
 */
export function takeStoreDataPdu(network: NetworkInternals, pdu: FramedPdu): boolean {
  if (pdu.type !== P_DATA_TF) return false;
  const request = network.dimse;
  if (request?.getCommandFieldType() !== C_STORE_RQ) return false;
  const open = network.dimseStoreStream;
  if (open?.writableEnded) return false; // data after the last fragment: leave the error to the library
  const pdvs = splitPdvs(pdu);
  if (!pdvs || !pdvs.every((pdv, i) => !pdv.command && (!pdv.last || i === pdvs.length - 1))) return false;
  const contexts: PresentationContext[] = [];
  for (const pdv of pdvs) {
    const context = network.association?.getPresentationContext(pdv.contextId);
    if (!context) return false;
    contexts.push(context);
  }
  try {
    pdvs.forEach((pdv, i) => {
      const context = contexts[i];
      if (context) storeFragment(network, request, context, pdv);
    });
  } catch (err) {
    // As the library reports a failure while handling a P-DATA-TF.
    const error = err instanceof Error ? err : new Error(String(err));
    dimseLog.error(`${network.logId} -> Error reading DIMSE: ${error.message}`);
    network.emit('networkError', error);
  }
  return true;
}

function storeFragment(
  network: NetworkInternals,
  request: NonNullable<NetworkInternals['dimse']>,
  context: PresentationContext,
  pdv: Pdv,
): void {
  let stream = network.dimseStoreStream;
  if (!stream) {
    network.dimseStream = undefined;
    stream = network.createStoreWritableStream(context, request);
    network.dimseStoreStream = stream;
  }
  // Corked, the slices reach the stream's _writev together: one write call for the whole fragment.
  stream.cork();
  let room = true;
  for (const piece of pdv.value) room = stream.write(piece);
  stream.uncork();
  if (!room) pauseUntilWritten(network, stream);
  if (!pdv.last) return;
  const writable = stream;
  writable.end();
  network.createDatasetFromStoreWritableStream(writable, context, (dataset) => {
    request.setDataset(dataset);
    network._performDimse(context, request);
    network.dimseStream = undefined;
    network.dimseStoreStream = undefined;
    network.dimse = undefined;
  });
}

/**
 * Stops reading the socket while the store stream holds more than its high-water mark (the library
 * ignores this signal), until it drains or, once ended or failed, closes.
 */
function pauseUntilWritten(network: NetworkInternals, stream: Writable): void {
  network.socket.pause();
  const resume = (): void => {
    stream.off('drain', resume);
    stream.off('close', resume);
    network.socket.resume();
  };
  stream.on('drain', resume);
  stream.on('close', resume);
}

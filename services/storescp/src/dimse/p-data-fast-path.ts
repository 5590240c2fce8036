import type { Writable } from 'node:stream';
import { decodeCommandSet } from './command-set.js';
import {
  C_STORE_RQ,
  CStoreRequestClass,
  Dataset,
  dimseLog,
  P_DATA_TF,
  type CStoreRequest,
  type PresentationContext,
} from './dimse.js';
import type { NetworkInternals } from './network-internals.js';
import type { FramedPdu } from './pdu-framer.js';
import { splitPdvs, type Pdv } from './pdv-split.js';

/** CommandDataSetType (0000,0800) value meaning "no dataset follows" (PS3.7 E.1). */
const NO_DATASET = 0x0101;

type Step =
  | { readonly kind: 'command'; readonly pdv: Pdv; readonly request: CStoreRequest }
  | { readonly kind: 'data'; readonly pdv: Pdv; readonly context: PresentationContext };

/**
 * Handles the P-DATA-TF PDUs that make up a C-STORE, in place of the library's `Network#_processPDataTf`
 * and its RawPdu/PDataTF objects, the copy of every PDU they need, the memory stream and dcmjs parse of
 * each command set: the bulk of the receiver's per-byte and per-instance work.
 *
 * - A C-STORE-RQ command in one PDV, arriving while no message is in progress, is decoded by
 *   {@link decodeCommandSet} into the same request object the library builds.
 * - The dataset PDVs that follow are written into the store stream as slices of the received chunks, and
 *   the last one finishes the C-STORE exactly as the library does.
 *
 * Takes a PDU only when every PDV in it is one of these, in a valid order, with a known presentation
 * context. Anything else (other commands, fragmented commands, datasets of other commands, data after
 * the last fragment, malformed PDUs, encodings the decoder leaves alone) returns false and goes through
 * the library, which keeps its state in the same fields this updates.
 */
export function takePDataPdu(network: NetworkInternals, pdu: FramedPdu): boolean {
  if (pdu.type !== P_DATA_TF) return false;
  const pdvs = splitPdvs(pdu);
  const steps = pdvs && plan(network, pdvs);
  if (!steps) return false;
  try {
    for (const step of steps) {
      if (step.kind === 'command') startStore(network, step.request, step.pdv);
      else storeFragment(network, step.context, step.pdv);
    }
  } catch (err) {
    // As the library reports a failure while handling a P-DATA-TF.
    const error = err instanceof Error ? err : new Error(String(err));
    dimseLog.error(`${network.logId} -> Error reading DIMSE: ${error.message}`);
    network.emit('networkError', error);
  }
  return true;
}

/** What to do with each PDV, or undefined when any of them must go through the library. */
function plan(network: NetworkInternals, pdvs: readonly Pdv[]): Step[] | undefined {
  const open = network.dimseStoreStream;
  let idle = !network.dimse && !network.dimseStream && !open;
  let awaitingData = network.dimse?.getCommandFieldType() === C_STORE_RQ && !open?.writableEnded;
  const steps: Step[] = [];
  for (const [i, pdv] of pdvs.entries()) {
    const context = network.association?.getPresentationContext(pdv.contextId);
    if (!context) return undefined;
    if (pdv.command) {
      const request = idle && pdv.last ? decodeStoreRequest(pdv) : undefined;
      if (!request) return undefined;
      steps.push({ kind: 'command', pdv, request });
      idle = false;
      awaitingData = true;
    } else {
      if (!awaitingData || (pdv.last && i !== pdvs.length - 1)) return undefined;
      steps.push({ kind: 'data', pdv, context });
      awaitingData = !pdv.last;
    }
  }
  return steps;
}

/** The C-STORE-RQ a command PDV holds, built as the library builds it; undefined for any other command. */
function decodeStoreRequest(pdv: Pdv): CStoreRequest | undefined {
  const [first] = pdv.value;
  const bytes = pdv.value.length === 1 && first ? first : Buffer.concat(pdv.value);
  const elements = decodeCommandSet(bytes);
  if (elements?.CommandField !== C_STORE_RQ || elements.CommandDataSetType === NO_DATASET) return undefined;
  // The library does `Object.assign(new CStoreRequest(), new Command(new Dataset(bytes)))`: a default
  // request whose command dataset is replaced by the parsed one.
  // (The type declarations want a dataset argument; the library itself calls it without one.)
  const request = new (CStoreRequestClass as unknown as new () => CStoreRequest)();
  request.setCommandDataset(new Dataset(elements));
  return request;
}

/** As the library does once a command set is complete and a dataset is to follow. */
function startStore(network: NetworkInternals, request: CStoreRequest, pdv: Pdv): void {
  if (dimseLog.getLevel() <= dimseLog.levels.INFO) {
    const described = request.toString({
      includeCommandDataset: network.logCommandDatasets,
      includeDataset: network.logDatasets,
    });
    dimseLog.info(`${network.logId} <- ${described} [pc: ${pdv.contextId}]`);
  }
  network.dimse = request;
  network.dimseStream = undefined;
  network.dimseStoreStream = undefined;
}

function storeFragment(network: NetworkInternals, context: PresentationContext, pdv: Pdv): void {
  const request = network.dimse;
  if (!request) throw new Error('dataset fragment without a command');
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

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { PresentationContext } from './dimse.js';
import type { NetworkInternals } from './network-internals.js';
import { PDataReceiver } from './p-data-receiver.js';
import type { FramedPdu } from './pdu-framer.js';
import {
  COMMAND_LAST,
  COMMAND_MORE,
  CT_IMAGE,
  DATA_LAST,
  DATA_MORE,
  echoCommand,
  pData,
  pdv,
  storeCommand,
} from './testing/raw-pdus.js';

/** A receiver over a fake network: what reached the store stream, the handlers, the socket, the aborts. */
function harness() {
  const seen = {
    stored: [] as Buffer[],
    performed: [] as string[],
    sent: [] as Buffer[],
    aborts: [] as string[],
  };
  const network = {
    socket: { pause: () => undefined, resume: () => undefined, write: (b: Buffer) => seen.sent.push(b) },
    statistics: { addBytesSent: () => undefined },
    logId: '',
    logCommandDatasets: false,
    logDatasets: false,
    createStoreWritableStream: () =>
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          seen.stored.push(chunk);
          callback();
        },
      }),
    createDatasetFromStoreWritableStream: (
      _w: Writable,
      _c: PresentationContext,
      done: (d: unknown) => void,
    ) => done({}),
    _performDimse: (_c: PresentationContext, request: { getCommandFieldType(): number }) =>
      seen.performed.push(`0x${request.getCommandFieldType().toString(16)}`),
  } as unknown as NetworkInternals;
  const context = {
    getAcceptedTransferSyntaxUid: () => '1.2.840.10008.1.2.1',
  } as unknown as PresentationContext;
  const receiver = new PDataReceiver(network, new Map([[1, context]]), {
    abort: (why) => seen.aborts.push(why),
    refused: () => undefined,
  });
  const take = (bytes: Buffer): void => {
    const pdu: FramedPdu = { type: bytes[0] ?? 0, length: bytes.length, pieces: [bytes] };
    receiver.take(pdu);
  };
  return { seen, take };
}

describe('PDataReceiver', () => {
  it('joins a command fragmented byte by byte and streams its dataset, small PDVs copied together', () => {
    const { seen, take } = harness();
    const command = storeCommand(1, CT_IMAGE, '1.2.3.4');
    const fragments = [...command].map((_, i) =>
      pdv(1, i === command.length - 1 ? COMMAND_LAST : COMMAND_MORE, command.subarray(i, i + 1)),
    );
    take(pData(fragments));
    const dataset = Buffer.from(Array.from({ length: 50_000 }, (_, i) => i % 251));
    const data = [...dataset].map((_, i) =>
      pdv(1, i === dataset.length - 1 ? DATA_LAST : DATA_MORE, dataset.subarray(i, i + 1)),
    );
    take(pData(data));
    expect(seen.aborts).toEqual([]);
    expect(seen.performed).toEqual(['0x1']);
    expect(Buffer.concat(seen.stored).equals(dataset)).toBe(true);
    expect(seen.stored.length).toBeLessThanOrEqual(2); // 50k one-byte PDVs: one or two staging slices
  });

  it('passes a C-ECHO to its handler and answers a C-ECHO with a dataset itself, after dropping it', () => {
    const { seen, take } = harness();
    take(pData([pdv(1, COMMAND_LAST, echoCommand(1))]));
    expect(seen.performed).toEqual(['0x30']);
    const withDataset = Buffer.from(echoCommand(2));
    withDataset.writeUInt16LE(0x0000, withDataset.length - 2); // CommandDataSetType: a dataset follows
    take(pData([pdv(1, COMMAND_LAST, withDataset), pdv(1, DATA_MORE, Buffer.alloc(1000))]));
    expect(seen.sent).toEqual([]); // answered only once its dataset has gone by
    take(pData([pdv(1, DATA_LAST, Buffer.alloc(10))]));
    expect(seen.sent).toHaveLength(1);
    expect(seen.performed).toEqual(['0x30']);
    expect(seen.aborts).toEqual([]);
  });

  it('aborts a PDV on a context not accepted, data without a command, and a command inside a dataset', () => {
    for (const pdu of [
      pData([pdv(3, COMMAND_LAST, echoCommand(1))]),
      pData([pdv(1, DATA_LAST, Buffer.alloc(4))]),
      pData([pdv(1, COMMAND_LAST, storeCommand(1, CT_IMAGE, '1.2.3')), pdv(1, COMMAND_LAST, echoCommand(2))]),
    ]) {
      const { seen, take } = harness();
      take(pdu);
      expect(seen.aborts).toHaveLength(1);
    }
  });
});

// A peer whose PDU lies about its length, on an association of its own, in the middle of a C-STORE (or,
// for the A-ASSOCIATE-RQ, before one). It reports every PDU the receiver answered and how the connection
// ended.
import { connect } from 'node:net';
import { associateRq, newUid, pdu, PduReader, storeCommand } from '@dicomflow/test-helpers';

const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const P_DATA_TF = 0x04;
/** PDV message control header: a dataset fragment that is not the last. */
const DATA_MORE = 0;
const COMMAND_LAST = 3;

/**
 * - `pdv-overruns-pdu`: the P-DATA-TF claims 1,000 bytes; the PDV inside it says 2,002.
 * - `pdu-longer-than-pdvs`: the P-DATA-TF claims 500 bytes more than its PDV fills.
 * - `pdu-over-limit`: the P-DATA-TF claims 2 GiB, far past the maximum PDU length the receiver announced.
 * - `pdu-never-completed`: the P-DATA-TF claims 64 KiB, 1,000 bytes follow, then the peer goes quiet.
 * - `associate-rq-cut`: the A-ASSOCIATE-RQ claims 20 bytes fewer than its items take.
 */
export type PduLie =
  'pdv-overruns-pdu' | 'pdu-longer-than-pdvs' | 'pdu-over-limit' | 'pdu-never-completed' | 'associate-rq-cut';

export interface LieOutcome {
  /** Each PDU the receiver sent after the lie: type, then its body bytes. */
  readonly answers: number[][];
  /** How the connection ended: 'closed' by the receiver, else the error the peer saw. */
  readonly ended: string;
}

function pdv(contextId: number, control: number, value: Buffer): Buffer {
  const header = Buffer.alloc(6);
  header.writeUInt32BE(value.length + 2, 0);
  header.writeUInt8(contextId, 4);
  header.writeUInt8(control, 5);
  return Buffer.concat([header, value]);
}

/** A PDU header of type `type` claiming `length` bytes. */
function pduHeader(type: number, length: number): Buffer {
  const header = Buffer.from([type, 0, 0, 0, 0, 0]);
  header.writeUInt32BE(length, 2);
  return header;
}

/** The bytes of the lie, sent after the association was accepted and a C-STORE has begun. */
function pDataLie(lie: Exclude<PduLie, 'associate-rq-cut'>): Buffer {
  switch (lie) {
    case 'pdv-overruns-pdu': {
      const item = pdv(1, DATA_MORE, Buffer.alloc(2_000, 0x20));
      return Buffer.concat([pduHeader(P_DATA_TF, 1_000), item]);
    }
    case 'pdu-longer-than-pdvs': {
      const item = pdv(1, DATA_MORE, Buffer.alloc(1_000, 0x20));
      return Buffer.concat([pduHeader(P_DATA_TF, item.length + 500), item, Buffer.alloc(500, 0xff)]);
    }
    case 'pdu-over-limit':
      return Buffer.concat([pduHeader(P_DATA_TF, 0x8000_0000), Buffer.alloc(64 * 1024, 0x20)]);
    case 'pdu-never-completed':
      return Buffer.concat([pduHeader(P_DATA_TF, 64 * 1024), pdv(1, DATA_MORE, Buffer.alloc(994, 0x20))]);
  }
}

/**
 * Connects to the receiver at `port`, lies as `lie` says and collects its answers until it closes the
 * connection (or `timeoutMs` passes without a PDU, reported in `ended`).
 */
export async function tellLie(
  port: number,
  calledAe: string,
  lie: PduLie,
  timeoutMs: number,
): Promise<LieOutcome> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  // Writes after the receiver closed fail (EPIPE); the reader below reports how the connection ended.
  socket.on('error', () => undefined);
  const reader = new PduReader(socket, timeoutMs);
  try {
    await reader.connected();
    const request = associateRq('LIAR', calledAe, [{ sopClass: CT_IMAGE, syntax: EXPLICIT_LE }]);
    if (lie === 'associate-rq-cut') {
      request.writeUInt32BE(request.length - 6 - 20, 2);
      socket.write(request);
    } else {
      socket.write(request);
      const accept = await reader.next();
      if (accept.type !== 0x02) throw new Error(`association not accepted (PDU type ${accept.type})`);
      // A C-STORE under way: its command and the first part of its dataset, then the lie.
      socket.write(pdu(P_DATA_TF, pdv(1, COMMAND_LAST, storeCommand(1, CT_IMAGE, newUid()))));
      socket.write(pdu(P_DATA_TF, pdv(1, DATA_MORE, Buffer.alloc(1_000, 0x20))));
      socket.write(pDataLie(lie));
    }
    const answers: number[][] = [];
    for (;;) {
      try {
        const answer = await reader.next();
        answers.push([answer.type, ...answer.body]);
      } catch (err) {
        return {
          answers,
          ended: err instanceof Error && err.message === 'connection closed' ? 'closed' : String(err),
        };
      }
    }
  } finally {
    socket.destroy();
  }
}

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

/** Says why an association was rejected, from its A-ASSOCIATE-RJ result, source and reason. */
export function rejectText(rj: { result: number; source: number; reason: number }): string {
  const kind = rj.result === 1 ? 'permanently' : 'transiently';
  const why = REJECT_REASONS[`${rj.source}:${rj.reason}`] ?? `source ${rj.source}, reason ${rj.reason}`;
  return `association rejected ${kind}: ${why}`;
}

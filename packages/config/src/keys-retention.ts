import { key, type KeySpec } from './key-spec.js';
import { integer } from './value-kinds.js';

const DAY = 24 * 60 * 60;

const age = (defaultSeconds: number, doc: string): KeySpec<number> =>
  key(integer(0), defaultSeconds, `${doc} In seconds; 0 keeps it forever.`);

/**
 * Retention: how long each kind of data is kept before the janitor of the service that owns it removes
 * it. Data a run still needs is kept whatever its age.
 */
export const retentionKeys = {
  RETENTION_RECEIPTS: age(
    30 * DAY,
    'Age after which a received study (`<receiptId>.tar` and its index in the incoming bucket) is removed, unless a run that is still running uses it.',
  ),
  RETENTION_RUN_OUTPUTS: age(
    30 * DAY,
    'Time after a run failed, or its delivery ended, after which its model outputs (`<runId>/` in the runs bucket) are removed; outputs of a run still running or being delivered are kept.',
  ),
  RETENTION_SPOOL: age(
    7 * DAY,
    "Age after which a leftover in storescp's spool (a file or folder no open group or association uses) is removed.",
  ),
  RETENTION_ROWS: age(
    30 * DAY,
    'Time after a run ended after which its scheduler rows, and its sender delivery and acknowledgement rows, are removed (never those of a run still running or being delivered).',
  ),
  RETENTION_EVENTS: age(
    90 * DAY,
    "Time after a run ended (sent or failed) after which the tracker's events of it, and events of no run, are removed; the run row stays.",
  ),
  RETENTION_RUNS: age(
    365 * DAY,
    "Time after a run's last change after which the tracker's run row, its steps and events, and receipts no kept run refers to are removed.",
  ),
  RETENTION_UPLOADS: age(
    DAY,
    'Age after which an incomplete multipart upload (a writer that died mid-upload) is aborted, in the buckets the service cleans.',
  ),
  JANITOR_INTERVAL: key(integer(1), 3600, 'Seconds between two passes of the retention janitor.'),
};

type RetentionKey = keyof typeof retentionKeys;

/** The retention keys `names` plus JANITOR_INTERVAL, in the order above, for one service's key group. */
export function retentionKeysOf<const K extends RetentionKey>(
  ...names: K[]
): Pick<typeof retentionKeys, K | 'JANITOR_INTERVAL'> {
  const wanted = new Set<RetentionKey>([...names, 'JANITOR_INTERVAL']);
  return Object.fromEntries(
    Object.entries(retentionKeys).filter(([name]) => wanted.has(name as RetentionKey)),
  ) as Pick<typeof retentionKeys, K | 'JANITOR_INTERVAL'>;
}

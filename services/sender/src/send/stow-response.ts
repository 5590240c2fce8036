import { isTransientStatus } from '@dicomflow/dicom';

/** What a STOW-RS server did with one instance of a request. */
export type InstanceVerdict =
  /** Stored; `status` is 0, or the WarningReason the server gave (0xB000 coercion, ...). */
  | { readonly kind: 'stored'; readonly status: number }
  /** Not stored, for good: reported, never sent again. */
  | { readonly kind: 'refused'; readonly status?: number; readonly message: string }
  /** Not stored for now (FailureReason 0xA7xx, out of resources): sent again in the next round. */
  | { readonly kind: 'deferred'; readonly status: number; readonly message: string };

/** How a whole STOW-RS request ended. */
export type StowVerdict =
  /** The server answered per instance (or for all at once): one verdict per instance, in request order. */
  | { readonly kind: 'instances'; readonly verdicts: readonly InstanceVerdict[] }
  /** Worth trying again later (408, 429, 5xx): nothing of the request counts as stored. */
  | { readonly kind: 'transient'; readonly code: string; readonly message: string }
  /** The server refused the request for good (other 4xx, a redirect): the target fails. */
  | { readonly kind: 'permanent'; readonly code: string; readonly message: string };

/** The parts of an HTTP answer that decide a verdict. */
export interface StowAnswer {
  readonly status: number;
  readonly statusText: string;
  /** The response body (DICOM JSON when the server honoured our Accept), or '' when there was none. */
  readonly body: string;
  /** The Location header of a redirect. */
  readonly location?: string;
}

/** HTTP statuses that say "later": request timeout, too many requests, and every server error. */
const TRANSIENT_HTTP = (status: number): boolean => status === 408 || status === 429 || status >= 500;

/** Tags of the PS3.18 store response (DICOM JSON model keys: 8 upper-case hex digits). */
const TAG = {
  failedSopSequence: '00081198',
  referencedSopSequence: '00081199',
  referencedSopInstanceUid: '00081155',
  failureReason: '00081197',
  warningReason: '00081196',
} as const;

/** Failure reasons a STOW-RS server commonly gives (PS3.18 table 10.5.3-3 and DIMSE storage statuses). */
const FAILURE_REASONS: Readonly<Record<number, string>> = {
  0x0110: 'processing failure',
  0x0122: 'SOP class not supported',
  0x0124: 'not authorized',
  0xa700: 'out of resources',
  0xa900: 'data set does not match SOP class',
  0xc000: 'cannot understand',
  0xc122: 'transfer syntax not supported',
};

/**
 * Judges a STOW-RS answer (PS3.18 10.5) for the instances of its request, by SOP Instance UID:
 * - 200 (and other 2xx): every instance stored, unless the body lists it in the FailedSOPSequence;
 * - 202: what the body lists (ReferencedSOPSequence stored, with a WarningReason when given; FailedSOPSequence
 *   refused with its FailureReason, or deferred for 0xA7xx); an instance it does not list is refused;
 * - 409: the server stored none; the FailedSOPSequence, when there is one, gives each instance's reason;
 * - 408, 429, 5xx: transient (the whole request is sent again later);
 * - any other status (400, 401, 403, 404, 413, 415, a 3xx redirect ...): permanent.
 * The body is read only when it is DICOM JSON; anything else (XML, HTML, nothing) falls back on the status.
 */
export function judgeStowAnswer(
  answer: StowAnswer,
  instances: readonly { readonly sopInstanceUid: string }[],
): StowVerdict {
  const { status } = answer;
  const http = `HTTP ${status}${answer.statusText ? ` ${answer.statusText}` : ''}`;
  if (TRANSIENT_HTTP(status))
    return { kind: 'transient', code: `HTTP ${status}`, message: `the server answered ${http}` };
  if (status >= 300 && status < 400)
    return {
      kind: 'permanent',
      code: `HTTP ${status}`,
      message: `the server answered ${http}${answer.location ? ` (to ${answer.location})` : ''}: redirects are not followed, put the URL it names in the flow`,
    };
  if (!(status >= 200 && status < 300) && status !== 409)
    return {
      kind: 'permanent',
      code: `HTTP ${status}`,
      message: `the server refused the request: ${http}${permanentHint(status)}`,
    };
  const listed = readStoreResponse(answer.body);
  const verdicts = instances.map((instance): InstanceVerdict => {
    const failure = listed.failed.get(instance.sopInstanceUid);
    if (failure !== undefined) return failedVerdict(failure, http);
    const warning = listed.stored.get(instance.sopInstanceUid);
    if (warning !== undefined) return { kind: 'stored', status: warning };
    if (status === 409)
      return { kind: 'refused', message: `the server stored none of the request's instances (${http})` };
    if (status === 202)
      return {
        kind: 'refused',
        message: `the server's answer (${http}) does not list the instance as stored`,
      };
    return { kind: 'stored', status: 0 };
  });
  return { kind: 'instances', verdicts };
}

function failedVerdict(reason: number | null, http: string): InstanceVerdict {
  if (reason === null)
    return { kind: 'refused', message: `refused by the server (${http}), no reason given` };
  const hex = `0x${reason.toString(16).toUpperCase().padStart(4, '0')}`;
  const words = FAILURE_REASONS[reason];
  const message = `STOW-RS FailureReason ${hex}${words ? ` (${words})` : ''}`;
  return isTransientStatus(reason)
    ? { kind: 'deferred', status: reason, message }
    : { kind: 'refused', status: reason, message };
}

function permanentHint(status: number): string {
  switch (status) {
    case 401:
      return ' (no or a wrong token: check token or token_file)';
    case 403:
      return ' (the token is not allowed to store)';
    case 404:
      return ' (check the url: instances go to <url>/studies)';
    case 413:
      return ' (lower SEND_STOW_BATCH_BYTES or SEND_STOW_BATCH_INSTANCES)';
    default:
      return '';
  }
}

/** The instances a store response lists: stored (UID -> warning status, 0 without) and failed (UID -> reason). */
interface ListedInstances {
  readonly stored: Map<string, number>;
  /** UID -> FailureReason, or null when the item gives none. */
  readonly failed: Map<string, number | null>;
}

/**
 * Reads the ReferencedSOPSequence and FailedSOPSequence of a DICOM JSON store response (an object, or a
 * list holding one, as some servers answer). Anything unreadable lists nothing.
 */
export function readStoreResponse(body: string): ListedInstances {
  const listed: ListedInstances = { stored: new Map(), failed: new Map() };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return listed;
  }
  const dataset = Array.isArray(parsed) ? (parsed as unknown[])[0] : parsed;
  if (!isRecord(dataset)) return listed;
  for (const item of sequenceItems(dataset, TAG.referencedSopSequence)) {
    const uid = stringValue(item, TAG.referencedSopInstanceUid);
    if (uid !== undefined) listed.stored.set(uid, statusValue(item, TAG.warningReason) ?? 0);
  }
  for (const item of sequenceItems(dataset, TAG.failedSopSequence)) {
    const uid = stringValue(item, TAG.referencedSopInstanceUid);
    if (uid !== undefined) listed.failed.set(uid, statusValue(item, TAG.failureReason) ?? null);
  }
  return listed;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The values of an element, looked up by tag whatever the case of its hex digits. */
function valuesOf(dataset: Record<string, unknown>, tag: string): unknown[] {
  const element = dataset[tag] ?? dataset[tag.toLowerCase()];
  if (!isRecord(element) || !Array.isArray(element.Value)) return [];
  return element.Value as unknown[];
}

function sequenceItems(dataset: Record<string, unknown>, tag: string): Record<string, unknown>[] {
  return valuesOf(dataset, tag).filter(isRecord);
}

function stringValue(dataset: Record<string, unknown>, tag: string): string | undefined {
  const [value] = valuesOf(dataset, tag);
  return typeof value === 'string' ? value.trim().replace(/\0+$/, '') : undefined;
}

/**
 * A US status value: a number as PS3.18 F.2 has it, or the 4 hex digits some servers write as a string
 * (`"0110"`, `"A700"`).
 */
function statusValue(dataset: Record<string, unknown>, tag: string): number | undefined {
  const [value] = valuesOf(dataset, tag);
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff) return value;
  if (typeof value === 'string' && /^(0x)?[0-9A-Fa-f]{4}$/.test(value.trim()))
    return Number.parseInt(value.trim().replace(/^0x/, ''), 16);
  return undefined;
}

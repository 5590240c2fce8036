import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { activeTraceIds } from './spans.js';

/** Keys that hold a patient's name, ID or birth date in the shapes our code and DICOM JSON use. */
const PHI_KEYS = [
  'PatientName',
  'PatientID',
  'PatientBirthDate',
  'patientName',
  'patientId',
  'patientID',
  'patientBirthDate',
] as const;

/** DICOM JSON model keys of the same attributes: (0010,0010), (0010,0020), (0010,0030). */
const PHI_TAGS = ['00100010', '00100020', '00100030'] as const;

/**
 * Redaction paths: each key at top level and one or two levels deep (`{ study: { PatientName } }`,
 * `{ receipt: { elements: { '00100010': ... } } }`). Deeper nesting is not covered; log summaries,
 * not whole datasets.
 */
export const PHI_REDACT_PATHS: readonly string[] = [
  ...PHI_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]),
  ...PHI_TAGS.flatMap((tag) => [`["${tag}"]`, `*["${tag}"]`, `*.*["${tag}"]`]),
];

export const REDACTED = '[redacted]';

export interface CreateLoggerOptions {
  /** Service name, added to every line as `service`. */
  service: string;
  /** pino level; defaults to `info`. */
  level?: string;
  /** Where lines go; defaults to stdout. */
  destination?: DestinationStream;
}

/**
 * Creates the JSON logger of a service: `{ level, time (ISO), service, msg, ... }` per line, with patient
 * name, ID and birth date redacted wherever they appear in the usual shapes (see {@link PHI_REDACT_PATHS}),
 * and `trace_id`/`span_id` while a span is recorded (see startTracing).
 */
export function createLogger(opts: CreateLoggerOptions): Logger {
  const options = {
    level: opts.level ?? 'info',
    base: { service: opts.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names rather than numbers: readable in `docker compose logs` and easy to filter in Grafana.
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: [...PHI_REDACT_PATHS], censor: REDACTED },
    // Lines written while a span is recorded name its trace, so logs and traces can be joined.
    mixin: () => activeTraceIds() ?? {},
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

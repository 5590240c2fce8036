import { Type, type Static } from '@sinclair/typebox';
import { FlowDestination } from '@dicomflow/messages';
import { PermanentError } from '@dicomflow/runtime';
import { RUN_STATUS, type RunStatus, type RunStatusName } from '../db/entities.js';

/** A status filter: a code (0, 1, 2, 3, 4, 400) or its name (pending ... failed). */
const STATUS_VALUES = [...Object.values(RUN_STATUS).map(String), ...Object.keys(RUN_STATUS)];

/** Query of `GET /runs`. */
export const RunsQuery = Type.Object(
  {
    status: Type.Optional(
      Type.String({
        pattern: `^(${STATUS_VALUES.join('|')})$`,
        description: 'Only runs with this status: a code or its name.',
      }),
    ),
    flow: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description: 'Only runs of this flow: its name or file.',
      }),
    ),
    from: Type.Optional(
      Type.String({ format: 'date-time', description: 'Only runs that started at or after.' }),
    ),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Only runs that started before.' })),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
    offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
  },
  { additionalProperties: false },
);
export type RunsQuery = Static<typeof RunsQuery>;

/** Parameters of `GET /runs/:id`. */
export const RunParams = Type.Object(
  { id: Type.String({ format: 'uuid', description: 'The run id.' }) },
  { additionalProperties: false },
);
export type RunParams = Static<typeof RunParams>;

/** Body of `POST /runs/:id/resend` (optional as a whole). */
export const ResendBody = Type.Object(
  {
    destinations: Type.Optional(
      Type.Array(FlowDestination, {
        minItems: 1,
        maxItems: 64,
        description:
          "Send to these DICOM nodes or DICOMweb servers instead of the run's own destinations (and not back to the sender).",
      }),
    ),
  },
  { additionalProperties: false },
);
export type ResendBody = Static<typeof ResendBody>;

/** Body of `POST /runs/:id/rerun`: nothing (or `{}`). */
export const RerunBody = Type.Object({}, { additionalProperties: false });

/** Parameters of `GET /studies/:studyInstanceUid`. */
export const StudyParams = Type.Object(
  {
    studyInstanceUid: Type.String({
      pattern: '^[0-9]+(\\.[0-9]+)*$',
      maxLength: 64,
      description: 'A DICOM UID: digits and dots, at most 64 characters.',
    }),
  },
  { additionalProperties: false },
);
export type StudyParams = Static<typeof StudyParams>;

/** A run code's name. */
export function statusName(code: number): string {
  for (const [name, value] of Object.entries(RUN_STATUS)) if (value === code) return name;
  return 'unknown';
}

/** The code of a status filter value (a code or a name, as {@link RunsQuery} checked). */
export function statusCode(value: string): RunStatus {
  if (Object.hasOwn(RUN_STATUS, value)) return RUN_STATUS[value as RunStatusName];
  const code = Number(value);
  const known = Object.values(RUN_STATUS).find((status) => status === code);
  if (known === undefined) throw new PermanentError(`unknown status ${value}`);
  return known;
}

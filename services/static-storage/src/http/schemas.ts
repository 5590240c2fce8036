// Every request and response shape of the static-storage HTTP API, in one place (TypeBox -> JSON Schema:
// fastify validates requests and serialises responses with them).
import { Type, type Static } from '@sinclair/typebox';

export const Sha256Hex = Type.String({
  pattern: '^[0-9a-f]{64}$',
  description: 'lower-case hex SHA-256 of the tar',
});

/** One stored tar. */
export const StaticItemBody = Type.Object({
  name: Type.String({ description: 'the name flows use in static_mounts ("name:/path")' }),
  size: Type.Integer({ minimum: 0, description: 'bytes' }),
  sha256: Type.Union([Sha256Hex, Type.Null()], { description: 'null for an object stored without one' }),
  updated: Type.String({ format: 'date-time' }),
  source: Type.Union([Type.Literal('directory'), Type.Literal('upload'), Type.Literal('unknown')], {
    description: 'directory: synced from the static folder; upload: the HTTP API; unknown: put there by hand',
  }),
});
export type StaticItemBody = Static<typeof StaticItemBody>;

/** GET /static */
export const StaticListBody = Type.Object({ items: Type.Array(StaticItemBody) });
export type StaticListBody = Static<typeof StaticListBody>;

/** The name part of /static/<name>, validated by hand for a clear message (see static-name.ts). */
export const NameParams = Type.Object({ '*': Type.String() });
export type NameParams = Static<typeof NameParams>;

/** PUT /static/<name>: optional checksum the client computed; a mismatch stores nothing. */
export const UploadHeaders = Type.Object({
  'x-sha256': Type.Optional(Type.String({ description: 'expected lower-case hex SHA-256 of the body' })),
});
export type UploadHeaders = Static<typeof UploadHeaders>;

/** PUT /static/<name> answer: 201 created, 200 replaced. */
export const UploadBody = Type.Object({ ...StaticItemBody.properties, replaced: Type.Boolean() });
export type UploadBody = Static<typeof UploadBody>;

/** Every error answer (the runtime's error handler). */
export const ErrorBody = Type.Object({ error: Type.String() });
export type ErrorBody = Static<typeof ErrorBody>;

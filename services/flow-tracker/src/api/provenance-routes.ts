import { Type, type Static } from '@sinclair/typebox';
import type { DataSource } from 'typeorm';
import type { FastifyInstance } from 'fastify';
import { GoneError } from '@dicomflow/runtime';
import { RunEntity } from '../db/entities.js';
import { instanceProvenance, runProvenance } from './provenance-views.js';
import { RunParams } from './schemas.js';

/** Parameters of `GET /instances/:sopInstanceUid`. */
export const InstanceParams = Type.Object(
  {
    sopInstanceUid: Type.String({
      pattern: '^[0-9]+(\\.[0-9]+)*$',
      maxLength: 64,
      description: 'A SOP Instance UID (digits and dots, at most 64 characters).',
    }),
  },
  { additionalProperties: false },
);
export type InstanceParams = Static<typeof InstanceParams>;

/**
 * `GET /instances/:sopInstanceUid` (where an instance came from and where it went, 404 when unknown) and
 * `GET /runs/:id/provenance` (what a run took, ran and delivered; 404 when the run is unknown).
 */
export function registerProvenanceRoutes(app: FastifyInstance, dataSource: DataSource): void {
  app.get<{ Params: InstanceParams }>(
    '/instances/:sopInstanceUid',
    { schema: { params: InstanceParams } },
    async (request) => {
      const { sopInstanceUid } = request.params;
      const answer = await instanceProvenance(dataSource, sopInstanceUid);
      if (!answer) throw new GoneError(`no instance ${sopInstanceUid} was received or delivered`);
      return answer;
    },
  );

  app.get<{ Params: RunParams }>(
    '/runs/:id/provenance',
    { schema: { params: RunParams } },
    async (request) => {
      const { id } = request.params;
      const run = await dataSource.getRepository(RunEntity).findOne({ where: { id } });
      if (!run) throw new GoneError(`no run ${id}`);
      return runProvenance(dataSource, run);
    },
  );
}

import type { DataSource } from 'typeorm';
import type { FastifyInstance } from 'fastify';
import { GoneError } from '@dicomflow/runtime';
import { RunEntity, StudyEntity, StudyReceiptEntity } from '../db/entities.js';
import { seriesCountsOf } from '../instances/series-counts.js';
import { statusName, StudyParams } from './schemas.js';

/**
 * `GET /studies/:studyInstanceUid`: the manifest of a study (series and instance counts over all receipts),
 * its revision and the receipts that made each revision, and the runs it started. 404 when never received.
 */
export function registerStudyRoutes(app: FastifyInstance, dataSource: DataSource): void {
  app.get<{ Params: StudyParams }>(
    '/studies/:studyInstanceUid',
    { schema: { params: StudyParams } },
    async (request) => {
      const { studyInstanceUid } = request.params;
      const study = await dataSource.getRepository(StudyEntity).findOne({ where: { studyInstanceUid } });
      if (!study) throw new GoneError(`no study ${studyInstanceUid} was received`);
      const receipts = await dataSource
        .getRepository(StudyReceiptEntity)
        .find({ where: { studyInstanceUid }, order: { receivedAt: 'ASC', receiptId: 'ASC' } });
      const series = await seriesCountsOf(dataSource, studyInstanceUid, receipts);
      const receiptIds = receipts.map((r) => r.receiptId);
      const runs =
        receiptIds.length === 0
          ? []
          : await dataSource
              .getRepository(RunEntity)
              .createQueryBuilder('run')
              .where('run.receipt_id IN (:...receiptIds)', { receiptIds })
              .orderBy('run.ts', 'ASC')
              .addOrderBy('run.id', 'ASC')
              .getMany();
      let revision = 0;
      return {
        studyInstanceUid,
        revision: study.revision,
        seriesCount: study.seriesCount,
        instanceCount: study.instanceCount,
        firstReceived: study.firstReceived.toISOString(),
        lastReceived: study.lastReceived.toISOString(),
        series,
        receipts: receipts.map((r) => ({
          revision: r.instanceCount > 0 ? ++revision : revision,
          receiptId: r.receiptId,
          receivedAt: r.receivedAt.toISOString(),
          instanceCount: r.instanceCount,
          series: r.series,
        })),
        runs: runs.map((r) => ({
          id: r.id,
          name: r.name,
          status: r.status,
          statusName: statusName(r.status),
        })),
      };
    },
  );
}
